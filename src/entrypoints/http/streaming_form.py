"""A push-based multipart/form-data reader that hands the one file part's data back as the body
passes through it, so an upload goes to the blob store while it arrives instead of being
spooled first, and the body can be received wherever it is cheapest (on the event loop) while
the file is written elsewhere (in a worker thread).

The parsing itself is python-multipart's ``MultipartParser`` (what Starlette uses), driven
through its callbacks.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING

import attrs
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from imagecore.errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# RFC 2046 §5.1.1: 1 to 70 characters of bchars, not ending in a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


@attrs.frozen
class FilePart:
    """The file part of a form, as its headers describe it; its data comes from ``feed``."""

    filename: str | None
    """The ``filename`` parameter of the part's Content-Disposition, or None without one.

    ``filename*`` is ignored, as RFC 7578 §4.2 forbids it in forms and python-multipart drops it.
    """
    content_type: str | None
    """The part's Content-Type header as sent, or None without one."""


class StreamingForm:
    """A multipart/form-data body read as it arrives, fed in piece by piece: text fields are
    collected, the one file part's data is handed back from ``feed`` as it passes.

    Every part must be named ``file_field`` (once: the file, whatever its headers) or one of
    ``text_fields`` (at most once each, without a filename, at most ``max_text_bytes``, UTF-8).
    Everything in the body that is not file data (preamble, boundaries, part headers, text
    fields, epilogue) may take at most ``max_envelope_bytes``. A client's mistake raises
    InvalidInput or PayloadTooLarge, from ``feed`` as soon as it is seen or from ``end``;
    nothing else is raised for any body. After an error the form takes nothing more.

    One pass, fed by one thread at a time: nothing is kept but the text fields.
    """

    fields: dict[str, str]
    """The text fields read so far, by name."""
    file: FilePart | None
    """The file part, once its headers have been read."""

    def __init__(
        self,
        content_type: str,
        *,
        text_fields: Collection[str],
        file_field: str = "file",
        max_text_bytes: int = 64 * 1024,
        max_envelope_bytes: int = 256 * 1024,
    ) -> None:
        if file_field in text_fields:
            raise ValueError(f"{file_field!r} cannot be both the file and a text field")
        self.fields = {}
        self.file = None
        self._text_fields = frozenset(text_fields)
        self._file_field = file_field
        self._allowed = ", ".join([file_field, *text_fields])
        self._max_text_bytes = max_text_bytes
        self._max_envelope_bytes = max_envelope_bytes

        self._received = 0  # bytes of body received
        self._file_bytes = 0  # of them, bytes of file data
        self._seen: set[str] = set()
        self._ended = False  # the closing boundary was read
        self._file_data: list[bytes] = []  # file data of the chunk being fed
        self._failed: InvalidInput | PayloadTooLarge | None = None

        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._part_name = ""
        self._part_is_file = False
        self._text = bytearray()

        boundary = _boundary(content_type)
        self._parser = MultipartParser(boundary, self._callbacks())
        self._delimiter = b"\r\n--" + boundary
        # Until the first delimiter is found: the preamble's last bytes, which may begin it. The
        # CRLF stands for the start of the body, where the delimiter needs none.
        self._preamble_tail: bytes | None = b"\r\n"

    def feed(self, chunk: bytes) -> bytes:
        """Parse the next piece of the body; the file data it holds (empty if none)."""
        if self._failed is not None:
            raise self._failed
        try:
            self._write(chunk)
        except (InvalidInput, PayloadTooLarge) as error:
            self._failed = error
            self._file_data.clear()
            raise
        data = b"".join(self._file_data)
        self._file_data.clear()
        return data

    def end(self) -> None:
        """The body has ended: raises InvalidInput unless it was a whole form with a file."""
        if self._failed is not None:
            raise self._failed
        if not self._ended:
            if self._received == 0:
                raise InvalidInput("malformed multipart body: the body is empty")
            if self._preamble_tail is not None:
                raise InvalidInput(
                    "malformed multipart body: the boundary of the Content-Type is nowhere in it"
                )
            raise InvalidInput("malformed multipart body: it ended before the closing boundary")
        if self.file is None:
            raise InvalidInput(
                f"the image is missing: send it as a file in the {self._file_field!r} part"
            )

    def _write(self, chunk: bytes) -> None:
        self._received += len(chunk)
        rest = chunk
        # Before the file every byte is envelope: feeding no more than the limit has left tells
        # exactly whether it is passed before the file part begins, however the body is split.
        while rest and self.file is None and not self._ended:
            budget = self._max_envelope_bytes - (self._received - len(rest))
            if budget <= 0:
                raise self._envelope_too_large()
            self._parse(rest[:budget])
            rest = rest[budget:]
        if rest and not self._ended:  # the epilogue is only counted
            self._parse(rest)
        if self._received - self._file_bytes - self._withheld() > self._max_envelope_bytes:
            raise self._envelope_too_large()

    def _parse(self, data: bytes) -> None:
        if self._preamble_tail is not None:
            # python-multipart skips a preamble only when it starts with CR or LF and only within
            # one chunk; skipping it here makes any preamble fine, however the body is split.
            buffer = self._preamble_tail + data
            at = buffer.find(self._delimiter)
            if at == -1:
                self._preamble_tail = buffer[-(len(self._delimiter) - 1) :]
                return
            self._preamble_tail = None
            data = buffer[at + 2 :]
        try:
            self._parser.write(data)
        except FormParserError as error:
            raise InvalidInput(f"malformed multipart body: {error}") from error

    def _withheld(self) -> int:
        """Bytes of the file part the parser holds back: they may start the next boundary."""
        if self._part_is_file and self._parser.state == MultipartState.PART_DATA:
            return self._parser.index
        return 0

    def _envelope_too_large(self) -> PayloadTooLarge:
        size = _size(self._max_envelope_bytes)
        return PayloadTooLarge(
            f"the form besides the file (text fields, part headers, boundaries) is over {size}: "
            f"keep it to at most {size}"
        )

    def _callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._part_name = ""
        self._part_is_file = False
        self._text = bytearray()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        # Latin-1 keeps the header's bytes as they are; UTF-8 is decoded from them per parameter.
        name = self._header_name.decode("latin-1").lower()
        self._headers[name] = self._header_value.decode("latin-1").strip(" \t")
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition"))
        raw_name = options.get(b"name")
        if raw_name is None:
            raise InvalidInput(
                "a form part has no name: give each part a "
                'Content-Disposition: form-data; name="..." header'
            )
        name = raw_name.decode("utf-8", "replace")
        if name != self._file_field and name not in self._text_fields:
            raise InvalidInput(f"unknown form field {name!r}: send {self._allowed}")
        if name in self._seen:
            if name == self._file_field:
                raise InvalidInput(f"send one file: the form has a second {name!r} part")
            raise InvalidInput(f"send the form field {name!r} once")
        self._seen.add(name)
        self._part_name = name
        if name == self._file_field:
            self._part_is_file = True
            raw_filename = options.get(b"filename")
            self.file = FilePart(
                filename=None if raw_filename is None else _decode_filename(raw_filename),
                content_type=self._headers.get("content-type"),
            )
        elif b"filename" in options:
            raise InvalidInput(f"{name} must be a text field, not a file")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part_is_file:
            self._file_data.append(data[start:end])
            self._file_bytes += end - start
            return
        self._text += data[start:end]
        if len(self._text) > self._max_text_bytes:
            size = _size(self._max_text_bytes)
            raise PayloadTooLarge(
                f"the form field {self._part_name!r} is over {size}: send at most {size}"
            )

    def _on_part_end(self) -> None:
        if self._part_is_file:
            return
        try:
            self.fields[self._part_name] = self._text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                f"the form field {self._part_name!r} is not valid UTF-8: send it as UTF-8 text"
            ) from None

    def _on_end(self) -> None:
        self._ended = True


def _boundary(content_type: str) -> bytes:
    try:
        media_type, options = parse_options_header(content_type)
    except UnicodeEncodeError:
        raise InvalidInput(
            "the Content-Type header is not plain text: send multipart/form-data"
        ) from None
    if media_type != b"multipart/form-data":
        raise InvalidInput(
            f"send the upload as multipart/form-data, not {media_type.decode('latin-1')!r}"
        )
    boundary = options.get(b"boundary")
    if boundary is None:
        raise InvalidInput("the multipart/form-data Content-Type has no boundary parameter")
    if not _BOUNDARY.fullmatch(boundary):
        raise InvalidInput(
            f"the multipart boundary {boundary.decode('latin-1')!r} is not valid: "
            "use 1 to 70 letters, digits or '()+_,-./:=? (RFC 2046)"
        )
    return boundary


def _decode_filename(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # an old client's Latin-1 name
        return raw.decode("latin-1")


def _size(count: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if count >= factor and count % factor == 0:
            return f"{count // factor} {unit}"
    return f"{count} bytes"
