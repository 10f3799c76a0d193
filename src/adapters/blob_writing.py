"""What the blob stores' writers share: a put is a writer fed from an iterator."""

from __future__ import annotations

from collections.abc import Iterable

from imagecore.model import StoredBlob
from imagecore.ports import BlobWriter


def put_through(writer: BlobWriter, chunks: Iterable[bytes]) -> StoredBlob:
    """Write every chunk and commit; whatever fails, including the chunks themselves, aborts the
    writer first, so nothing is left behind, and then propagates."""
    try:
        for chunk in chunks:
            writer.write(chunk)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
