"""A synchronous, pull-based multipart/form-data reader that hands the one file part out as a
stream, so an upload goes to the blob store while it arrives instead of being spooled first.

It runs in the worker thread of the upload use case and pulls the body through a callable; the
parsing itself is python-multipart's ``MultipartParser`` (what Starlette uses), driven through
its callbacks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Generator
from typing import TYPE_CHECKING

import attrs
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from imagecore.errors import ImageCoreError, InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# RFC 2046 §5.1.1: 1 to 70 characters of bchars, not ending in a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


@attrs.frozen
class FilePart:
    """The file part of a form, its data still to be read.

    ``chunks`` yields the file's bytes as they arrive: at most one chunk per ``receive()`` call,
    no larger than what that call returned plus the few bytes of a possible boundary the parser
    held back from the call before. Once the file part ends, it goes on reading the rest of the
    body before it stops: when it is exhausted, ``StreamingForm.fields`` also holds the text
    fields sent after the file, and every error in the rest of the body (InvalidInput,
    PayloadTooLarge) has been raised from it. ``chunks.close()`` stops early; the rest of the
    body is then left unread.
    """

    filename: str | None
    """The ``filename`` parameter of the part's Content-Disposition, or None without one.

    ``filename*`` is ignored, as RFC 7578 §4.2 forbids it in forms and python-multipart drops it.
    """
    content_type: str | None
    """The part's Content-Type header as sent, or None without one."""
    chunks: Generator[bytes, None, None]


class StreamingForm:
    """A multipart/form-data body read as it arrives: text fields are collected, the one file
    part is handed out as a stream of chunks.

    ``receive`` returns the next chunk of the body, or None at its end; whatever it raises (the
    client went away, say) propagates unchanged from ``file()`` or from the file's chunks.
    Every part must be named ``file_field`` (once: the file, whatever its headers) or one of
    ``text_fields`` (at most once each, without a filename, at most ``max_text_bytes``, UTF-8).
    Everything in the body that is not file data (preamble, boundaries, part headers, text
    fields, epilogue) may take at most ``max_envelope_bytes``. A client's mistake raises
    InvalidInput or PayloadTooLarge; nothing else is raised for any body.

    One pass, one thread: nothing is kept but the text fields and one received chunk.
    """

    fields: dict[str, str]
    """The text fields read so far, by name."""

    def __init__(
        self,
        content_type: str,
        receive: Callable[[], bytes | None],
        *,
        text_fields: Collection[str],
        file_field: str = "file",
        max_text_bytes: int = 64 * 1024,
        max_envelope_bytes: int = 256 * 1024,
    ) -> None:
        if file_field in text_fields:
            raise ValueError(f"{file_field!r} cannot be both the file and a text field")
        self.fields = {}
        self._receive = receive
        self._text_fields = frozenset(text_fields)
        self._file_field = file_field
        self._allowed = ", ".join([file_field, *text_fields])
        self._max_text_bytes = max_text_bytes
        self._max_envelope_bytes = max_envelope_bytes

        self._received = 0  # bytes of body received
        self._file_bytes = 0  # of them, bytes of file data
        self._seen: set[str] = set()
        self._ended = False  # the closing boundary was read
        self._file: FilePart | None = None
        self._file_data: list[bytes] = []  # file data of the last received chunk, not yet yielded
        self._error: ImageCoreError | None = None  # what broke the parser: it takes no more data

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

    def file(self) -> FilePart:
        """Read up to the start of the file part's data and return it. Text fields before it are in
        ``fields`` now. Raises InvalidInput if the body ends without a file part.

        Once found, the same FilePart is returned again.
        """
        while self._file is None:
            if self._error is not None:
                raise self._error
            if self._ended or not self._pull():
                raise InvalidInput(
                    f"the image is missing: send it as a file in the {self._file_field!r} part"
                )
        return self._file

    def _chunks(self) -> Generator[bytes, None, None]:
        while True:
            if self._file_data:
                data = b"".join(self._file_data)
                self._file_data.clear()
                yield data
            if self._error is not None:
                raise self._error
            if not self._pull():
                return

    def _pull(self) -> bool:
        """Feed the parser the next chunk of the body: False at the end of a well-formed body.

        An error after the file part began is kept in ``_error`` for the chunks to raise once
        they have handed out the file data before it; before that, it is raised here.
        """
        chunk = self._receive()
        try:
            if chunk is None:
                self._at_end_of_body()
                return False
            self._write(chunk)
        except ImageCoreError as error:
            self._error = error
            if self._file is None:
                raise
        return True

    def _write(self, chunk: bytes) -> None:
        self._received += len(chunk)
        rest = chunk
        # Before the file every byte is envelope: feeding no more than the limit has left tells
        # exactly whether it is passed before the file part begins, however the body is split.
        while rest and self._file is None and not self._ended:
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

    def _at_end_of_body(self) -> None:
        if self._ended:
            return
        if self._received == 0:
            raise InvalidInput("malformed multipart body: the body is empty")
        if self._preamble_tail is not None:
            raise InvalidInput(
                "malformed multipart body: the boundary of the Content-Type is nowhere in it"
            )
        raise InvalidInput("malformed multipart body: it ended before the closing boundary")

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
            self._file = FilePart(
                filename=None if raw_filename is None else _decode_filename(raw_filename),
                content_type=self._headers.get("content-type"),
                chunks=self._chunks(),
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
