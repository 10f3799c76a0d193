"""What of an image is its owner's alone: where it was taken and the camera's serial number.

Other callers see an image without its ``gps_*`` metadata and ``camera_serial``, and download
its original with the file's own GPS record and serial numbers made unreadable (the patches
the inspector found at upload; the pixels and the size unchanged), unless the owner shares the
image's location (``share_location``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import attrs

from imagecore.model import BytePatch, Image, MetadataValue

PRIVATE_METADATA_PREFIX = "gps_"
PRIVATE_METADATA_KEYS = frozenset({"camera_serial"})


def is_private_metadata(key: str) -> bool:
    return key.startswith(PRIVATE_METADATA_PREFIX) or key in PRIVATE_METADATA_KEYS


def hides_location_from(image: Image, caller: str) -> bool:
    """Whether ``caller`` sees less of the image than its owner does."""
    return caller != image.user_id and not image.share_location


def shown_to(image: Image, caller: str) -> Image:
    """The image as ``caller`` may see it: the same version, its private metadata left out
    for anyone but the owner unless the owner shares it."""
    if not hides_location_from(image, caller):
        return image
    kept: dict[str, MetadataValue] = {
        key: value for key, value in image.metadata.items() if not is_private_metadata(key)
    }
    if len(kept) == len(image.metadata):
        return image
    return attrs.evolve(image, metadata=kept)


def patched(
    chunks: Iterable[bytes], patches: Sequence[BytePatch], start: int = 0
) -> Iterator[bytes]:
    """``chunks``, the bytes of a file from offset ``start`` on in pieces of any size, with
    ``patches`` (disjoint) applied where they fall, also across pieces or only partly inside
    the range. A piece no patch touches is passed on as it is; nothing else is held."""
    ordered = sorted((patch for patch in patches if patch.data), key=lambda patch: patch.offset)
    first = 0  # the first patch that may still touch this piece or a later one
    position = start
    for chunk in chunks:
        end = position + len(chunk)
        while first < len(ordered) and ordered[first].end <= position:
            first += 1
        if first == len(ordered) or ordered[first].offset >= end:
            yield chunk
        else:
            changed = bytearray(chunk)
            index = first
            while index < len(ordered) and ordered[index].offset < end:
                patch = ordered[index]
                low, high = max(patch.offset, position), min(patch.end, end)
                if low < high:
                    changed[low - position : high - position] = patch.data[
                        low - patch.offset : high - patch.offset
                    ]
                index += 1
            yield bytes(changed)
        position = end
