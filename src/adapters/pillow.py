"""Image sniffing with Pillow: the format from the magic bytes, the size from the header."""

from __future__ import annotations

import io
import warnings

from PIL import Image as PILImage

from imagecore.model import ImageFacts

_CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}


class PillowInspector:
    """``Image.open`` identifies the format by content and parses only the header; pixels are
    never decoded here."""

    def inspect(self, head: bytes) -> ImageFacts | None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with PILImage.open(io.BytesIO(head), formats=list(_CONTENT_TYPES)) as image:
                    width, height = image.size
                    content_type = _CONTENT_TYPES.get(image.format or "")
        except Exception:  # Pillow raises many types for malformed input; all mean "not an image"
            return None
        if content_type is None or width <= 0 or height <= 0:
            return None
        return ImageFacts(content_type=content_type, width=width, height=height)
