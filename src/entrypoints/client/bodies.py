"""Request bodies that stream a file from disk, counting the bytes as they go.

An upload is a multipart/form-data body: the text fields, then the file. It is built here
rather than by httpx so that its length is known before it is sent (S3's presigned POST takes
no chunked body, and the server refuses a declared excess before reading a byte), the file is
read in pieces rather than held in memory, and every piece sent is counted for the progress
display, including the pieces of a try that failed, which are taken back when the body is
sent again.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

CHUNK_BYTES = 256 * 1024

Counter = Callable[[int], None]
"""Told each number of bytes sent, negative when a failed try's bytes are taken back."""


def _quoted(value: str) -> str:
    """A form-data parameter value: quotes and line breaks percent-encoded, as browsers do
    (WHATWG's multipart/form-data encoding)."""
    return value.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22")


class FileForm:
    """``fields`` then ``path`` as the ``file`` part of a multipart/form-data body. Iterating
    it reads the file afresh each time, so a retry sends it whole again."""

    def __init__(
        self,
        fields: Mapping[str, str],
        path: Path,
        size: int,
        filename: str,
        content_type: str,
        count: Counter | None = None,
    ) -> None:
        self.boundary = f"imagecore-{secrets.token_hex(16)}"
        self._path = path
        self._size = size
        self._count = count
        self._counted = 0
        self._lock = threading.Lock()
        head = b"".join(
            self._part_head(f'name="{_quoted(name)}"') + value.encode() + b"\r\n"
            for name, value in fields.items()
        )
        disposition = f'name="file"; filename="{_quoted(filename)}"'
        self._head = head + self._part_head(disposition, content_type)
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()

    def _part_head(self, disposition: str, content_type: str | None = None) -> bytes:
        lines = [f"--{self.boundary}", f"Content-Disposition: form-data; {disposition}"]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def length(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def headers(self) -> dict[str, str]:
        return {"Content-Type": self.content_type, "Content-Length": str(self.length)}

    def __iter__(self) -> Iterator[bytes]:
        self.take_back()
        yield self._head
        with self._path.open("rb") as file:
            remaining = self._size
            while remaining > 0:
                chunk = file.read(min(CHUNK_BYTES, remaining))
                if not chunk:
                    raise OSError(f"{self._path} became shorter while it was sent")
                remaining -= len(chunk)
                self._counted_bytes(len(chunk))
                yield chunk
        yield self._tail

    def _counted_bytes(self, amount: int) -> None:
        if self._count is not None:
            with self._lock:
                self._counted += amount
            self._count(amount)

    def take_back(self) -> None:
        """Uncount what was sent: the try failed (this body is sent again, or not at all)."""
        with self._lock:
            counted, self._counted = self._counted, 0
        if counted and self._count is not None:
            self._count(-counted)


class CountedBytes:
    """Bytes held in memory (a piece of a resumable upload), sent in pieces that are counted
    as they go; iterating again (a retry) takes back what the last try counted."""

    def __init__(self, data: bytes | memoryview, count: Counter | None = None) -> None:
        self._data = data
        self._count = count
        self._counted = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[bytes]:
        self.take_back()
        view = memoryview(self._data)
        for start in range(0, len(view), CHUNK_BYTES):
            piece = view[start : start + CHUNK_BYTES]
            if self._count is not None:
                with self._lock:
                    self._counted += len(piece)
                self._count(len(piece))
            yield bytes(piece)

    def take_back(self) -> None:
        """Uncount what was sent: the try failed."""
        with self._lock:
            counted, self._counted = self._counted, 0
        if counted and self._count is not None:
            self._count(-counted)
