"""StreamingForm: multipart/form-data bodies read as they arrive, the file handed out as a stream.

Bodies come from httpx and by hand, split into receive() chunks every which way; the properties
check that the split never changes what comes out, that file data comes out as it arrives, and
that no body makes the reader raise anything but InvalidInput or PayloadTooLarge.

The form is fed as the upload endpoints feed it (``Pulled``): piece by piece until its file part
begins, then the rest, each piece's file data handed on as it comes.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import string
import tracemalloc
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence

import attrs
import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from entrypoints.http.streaming_form import StreamingForm
from imagecore.errors import InvalidInput, PayloadTooLarge

TEXT_FIELDS = ("title", "description", "tags", "metadata", "visibility")
BOUNDARY = "b0undary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class ClientGone(Exception):
    """What an ASGI receive raises when the client disconnects."""


@attrs.define
class Feed:
    """A receive() over given chunks that records what it handed out."""

    chunks: Sequence[bytes]
    calls: int = 0
    ended: bool = False

    def __call__(self) -> bytes | None:
        assert not self.ended, "receive() called again after the end of the body"
        if self.calls == len(self.chunks):
            self.ended = True
            return None
        self.calls += 1
        return self.chunks[self.calls - 1]


@attrs.frozen
class PulledFile:
    filename: str | None
    content_type: str | None
    chunks: Generator[bytes, None, None]


class Pulled:
    """A StreamingForm fed from ``receive`` as the endpoints feed it: up to its file part with
    ``file()``, then the rest through the file's ``chunks``, which end with the form's end."""

    def __init__(
        self, content_type: str, receive: Callable[[], bytes | None], **options: object
    ) -> None:
        self.form = StreamingForm(content_type, **options)  # type: ignore[arg-type]
        self._receive = receive
        self._first = b""
        self._file: PulledFile | None = None

    @property
    def fields(self) -> dict[str, str]:
        return self.form.fields

    def file(self) -> PulledFile:
        while self.form.file is None:
            piece = self._receive()
            if piece is None:
                self.form.end()
            else:
                self._first = self.form.feed(piece)
        if self._file is None:
            part = self.form.file
            self._file = PulledFile(part.filename, part.content_type, self._chunks())
        return self._file

    def _chunks(self) -> Generator[bytes, None, None]:
        if self._first:
            yield self._first
        while (piece := self._receive()) is not None:
            if data := self.form.feed(piece):
                yield data
        self.form.end()


Part = tuple[list[tuple[str, str]], bytes]


def part(
    name: str | None, data: bytes | str, *, filename: str | None = None, **headers: str
) -> Part:
    """One part as (headers, data); ``Content_Type="x"`` gives the header Content-Type: x."""
    disposition = "form-data"
    if name is not None:
        disposition += f'; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    lines = [("Content-Disposition", disposition), *headers.items()]
    return lines, data.encode() if isinstance(data, str) else data


def body_of(parts: Iterable[Part], boundary: str = BOUNDARY) -> bytes:
    out = bytearray()
    for headers, data in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers:
            out += f"{name.replace('_', '-')}: {value}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def split(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] if size else [body]


def form_of(
    chunks: Sequence[bytes],
    content_type: str = CONTENT_TYPE,
    *,
    max_text_bytes: int = 64 * 1024,
    max_envelope_bytes: int = 256 * 1024,
) -> Pulled:
    return Pulled(
        content_type,
        Feed(chunks),
        text_fields=TEXT_FIELDS,
        max_text_bytes=max_text_bytes,
        max_envelope_bytes=max_envelope_bytes,
    )


def read(
    chunks: Sequence[bytes], content_type: str = CONTENT_TYPE, **limits: int
) -> tuple[Pulled, PulledFile, bytes]:
    """(form, file part, file bytes) with the file's chunks read to the end."""
    form = form_of(chunks, content_type, **limits)
    file = form.file()
    return form, file, b"".join(file.chunks)


def drain(chunks: Iterator[bytes], into: bytearray) -> None:
    for chunk in chunks:
        into += chunk


def httpx_body(data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://testserver/images", data=data, files=files)
    return request.headers["content-type"], request.read()


# Bodies that parse


@pytest.mark.parametrize("size", [0, 1, 7, 100, 4096])
def test_an_httpx_body_gives_its_fields_and_its_file(size: int) -> None:
    content_type, body = httpx_body(
        {"title": "Été à la plage", "tags": "beach, sea", "metadata": '{"a": 1}'},
        {"file": ("photo.png", PNG, "image/png")},
    )
    form = form_of(split(body, size), content_type)
    file = form.file()
    # httpx puts the text fields first: they are all known before any file data is read.
    assert form.fields == {"title": "Été à la plage", "tags": "beach, sea", "metadata": '{"a": 1}'}
    assert (file.filename, file.content_type) == ("photo.png", "image/png")
    assert b"".join(file.chunks) == PNG


def test_an_httpx_body_with_a_unicode_filename() -> None:
    content_type, body = httpx_body({}, {"file": ("日本の海 ü.png", PNG, "image/png")})
    _, file, data = read(split(body, 5), content_type)
    assert file.filename == "日本の海 ü.png"
    assert data == PNG


@pytest.mark.parametrize("size", [0, 1, 9])
def test_fields_after_the_file_are_known_once_its_chunks_are_exhausted(size: int) -> None:
    body = body_of(
        [
            part("title", "before"),
            part("file", PNG, filename="a.png", Content_Type="image/png"),
            part("description", "after"),
            part("visibility", "public"),
        ]
    )
    form = form_of(split(body, size))
    file = form.file()
    assert form.fields["title"] == "before"
    assert b"".join(file.chunks) == PNG
    assert form.fields == {"title": "before", "description": "after", "visibility": "public"}


def test_only_fields_after_the_file() -> None:
    body = body_of([part("file", PNG, filename="a.png"), part("title", "t"), part("tags", "x")])
    form, file, data = read(split(body, 3))
    assert (data, form.fields) == (PNG, {"title": "t", "tags": "x"})
    assert file.content_type is None


def test_filename_star_is_ignored_as_rfc_7578_says() -> None:
    disposition = 'form-data; name="file"; filename="plain.png"; filename*=UTF-8\'\'%C3%BC.png'
    body = body_of([([("Content-Disposition", disposition)], PNG)])
    assert read([body])[1].filename == "plain.png"
    only_star = "form-data; name=\"file\"; filename*=UTF-8''%C3%BC.png"
    assert read([body_of([([("Content-Disposition", only_star)], PNG)])])[1].filename is None


def test_a_latin_1_filename_is_kept() -> None:
    head = b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="caf\xe9.png"\r\n'
    body = head + b"\r\n" + PNG + b"\r\n--b0undary--\r\n"
    assert read([body])[1].filename == "café.png"


def test_the_file_part_is_the_file_whatever_its_headers() -> None:
    _, file, data = read([body_of([part("file", PNG)])])
    assert (file.filename, file.content_type, data) == (None, None, PNG)


def test_an_empty_file() -> None:
    form = form_of([body_of([part("title", "t"), part("file", b"", filename="e.png")])])
    file = form.file()
    assert list(file.chunks) == []
    assert file.filename == "e.png"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 11, 13])
def test_file_data_that_looks_like_a_boundary(size: int) -> None:
    data = (
        b"\r\n--\r\n--b\r\n--b0undar\r\n--b0undarX\r\n\r\n--b0undar--\r\n-"
        + bytes(range(256))
        + b"\r\n--b0undar\r"
    )
    body = body_of([part("file", data, filename="x.bin"), part("title", "t")])
    form, _, got = read(split(body, size))
    assert (got, form.fields) == (data, {"title": "t"})


def test_a_quoted_boundary_preamble_crlf_and_an_epilogue() -> None:
    boundary = "a:b=c?d (e)"
    body = b"\r\n\r\n" + body_of([part("file", PNG, filename="p.png")], boundary) + b"bye\r\n"
    _, _, data = read(split(body, 10), f'multipart/form-data; boundary="{boundary}"')
    assert data == PNG


def test_file_data_comes_out_as_it_arrives() -> None:
    head = b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
    pieces = [head + b"first", b"second", b"", b"third", b"\r\n--b0undary--\r\n"]
    feed = Feed(pieces)
    file = Pulled(CONTENT_TYPE, feed, text_fields=TEXT_FIELDS).file()
    seen = [(chunk, feed.calls) for chunk in file.chunks]
    assert seen == [(b"first", 1), (b"second", 2), (b"third", 4)]


def test_file_returns_the_same_part_again() -> None:
    form = form_of([body_of([part("file", PNG, filename="a")])])
    assert form.file() is form.file()


def test_closing_the_chunks_early_is_harmless() -> None:
    body = body_of([part("file", PNG, filename="a")])
    file = form_of(split(body, 50)).file()
    file.chunks.close()
    assert list(file.chunks) == []
    file = form_of(split(body, 50)).file()
    next(file.chunks)
    file.chunks.close()
    file.chunks.close()
    assert list(file.chunks) == []


# Errors: before the file they come from file(), after it from its chunks: each from the feed of
# the piece that holds it


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("application/json", "send the upload as multipart/form-data, not 'application/json'"),
        ("", "send the upload as multipart/form-data"),
        ("multipart/form-data", "has no boundary"),
        ("multipart/form-data; charset=utf-8", "has no boundary"),
        ('multipart/form-data; boundary=""', "is not valid"),
        ("multipart/form-data; boundary=" + "x" * 71, "is not valid"),
        ('multipart/form-data; boundary="ends with space "', "is not valid"),
        ("multipart/form-data; boundary=b\x01d", "is not valid"),
        ("multipart/form-data; boundary=日本", "is not plain text"),
    ],
)
def test_a_content_type_that_is_not_a_multipart_form(content_type: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        StreamingForm(content_type, text_fields=TEXT_FIELDS)


def test_a_seventy_character_boundary_is_fine() -> None:
    boundary = "x" * 70
    body = body_of([part("file", PNG, filename="a")], boundary)
    assert read([body], f"multipart/form-data; boundary={boundary}")[2] == PNG


BEFORE_THE_FILE = [
    (
        [part(None, "x")],
        InvalidInput,
        'a form part has no name: give each part a Content-Disposition: form-data; name="..."',
    ),
    (
        [([("Content-Type", "text/plain")], b"x")],
        InvalidInput,
        "a form part has no name",
    ),
    (
        [part("colour", "red")],
        InvalidInput,
        "unknown form field 'colour': send file, title, description, tags, metadata, visibility",
    ),
    ([part("title", "a"), part("title", "b")], InvalidInput, "send the form field 'title' once"),
    (
        [part("title", "a", filename="t.txt")],
        InvalidInput,
        "title must be a text field, not a file",
    ),
    ([part("title", b"\xff\xfe")], InvalidInput, "the form field 'title' is not valid UTF-8"),
    (
        [part("description", "d" * 101)],
        PayloadTooLarge,
        "the form field 'description' is over 100 bytes: send at most 100 bytes",
    ),
    (
        [part("title", "t" * 100), part("tags", "t" * 100), part("metadata", "t" * 100)],
        PayloadTooLarge,
        "the form besides the file (text fields, part headers, boundaries) is over 400 bytes",
    ),
]


@pytest.mark.parametrize(("parts", "error", "message"), BEFORE_THE_FILE)
@pytest.mark.parametrize("size", [0, 1, 17])
def test_errors_before_the_file_come_from_file(
    parts: list[Part], error: type[Exception], message: str, size: int
) -> None:
    body = body_of([*parts, part("file", PNG, filename="a.png")])
    form = form_of(split(body, size), max_text_bytes=100, max_envelope_bytes=400)
    with pytest.raises(error) as raised:
        form.file()
    assert type(raised.value) is error
    assert str(raised.value).startswith(message)
    with pytest.raises(error):  # and again: the form does not go on after an error
        form.file()


AFTER_THE_FILE = [
    ([part("colour", "red")], InvalidInput, "unknown form field 'colour'"),
    (
        [part("file", b"again", filename="b.png")],
        InvalidInput,
        "send one file: the form has a second 'file' part",
    ),
    ([part("title", "x", filename="t.txt")], InvalidInput, "title must be a text field"),
    ([part(None, "x")], InvalidInput, "a form part has no name"),
    ([part("tags", "a" * 101)], PayloadTooLarge, "the form field 'tags' is over 100 bytes"),
    ([part("tags", b"\xc3")], InvalidInput, "the form field 'tags' is not valid UTF-8"),
    (
        [part("title", "a"), part("tags", "b"), part("title", "c")],
        InvalidInput,
        "send the form field 'title' once",
    ),
]


@pytest.mark.parametrize(("parts", "error", "message"), AFTER_THE_FILE)
@pytest.mark.parametrize("size", [0, 1, 17])
def test_errors_after_the_file_come_from_its_chunks(
    parts: list[Part], error: type[Exception], message: str, size: int
) -> None:
    body = body_of([part("description", "a"), part("file", PNG, filename="a.png"), *parts])
    form = form_of(split(body, size), max_text_bytes=100)
    got = bytearray()
    with pytest.raises(error) as raised:  # from file() when the file begins in that piece
        drain(form.file().chunks, got)
    assert str(raised.value).startswith(message)
    assert PNG.startswith(bytes(got))  # the data of the pieces before the one that failed
    with pytest.raises(error):  # and again: the form does not go on after an error
        form.form.feed(b"more")


def _file_then(tail: bytes) -> bytes:
    return body_of([part("file", PNG, filename="a.png")]).removesuffix(b"--b0undary--\r\n") + tail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "malformed multipart body: the body is empty"),
        (b"hello", "malformed multipart body: the boundary of the Content-Type is nowhere in it"),
        (b"--other\r\n", "malformed multipart body: the boundary of the Content-Type is nowhere"),
        (b"--b0undary\r\n" + b"x" * 10, "malformed multipart body: "),
        (b"preamble--b0undary\r\n", "malformed multipart body: the boundary of the Content"),
        (b"--b0undaryX\r\n", "malformed multipart body: Did not find CR at end of boundary"),
        (b"--b0undary\r\nno colon here\r\n\r\n", "malformed multipart body: "),
        (b"--b0undary\r\n" + b"X-A: b\r\n" * 20 + b"\r\n", "malformed multipart body: "),
        (body_of([part("title", "t")])[:-20], "malformed multipart body: it ended before the"),
        (b"\r\n\r\n", "malformed multipart body: the boundary of the Content-Type is nowhere"),
        (b"--b0undary\r\n", "malformed multipart body: it ended before the closing boundary"),
    ],
)
@pytest.mark.parametrize("size", [0, 1])
def test_a_malformed_body_before_the_file(body: bytes, message: str, size: int) -> None:
    with pytest.raises(InvalidInput, match="^" + re.escape(message)):
        form_of(split(body, size)).file()


@pytest.mark.parametrize("parts", [[], [part("title", "t")]])
@pytest.mark.parametrize("epilogue", [b"", b"\r\nand more"])
def test_a_body_without_a_file(parts: list[Part], epilogue: bytes) -> None:
    form = form_of(split(body_of(parts) + epilogue, 3))
    with pytest.raises(
        InvalidInput, match=r"^the image is missing: send it as a file in the 'file' part$"
    ):
        form.file()


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b"", "malformed multipart body: it ended before the closing boundary"),
        (b"--b0undary\r\n", "malformed multipart body: it ended before the closing boundary"),
        (b"--b0undary\r\nbad header\r\n\r\n", "malformed multipart body: "),
    ],
)
@pytest.mark.parametrize("size", [0, 1, 64])
def test_a_malformed_body_after_the_file_fails_from_its_chunks(
    tail: bytes, message: str, size: int
) -> None:
    form = form_of(split(_file_then(tail), size))
    with pytest.raises(InvalidInput, match="^" + re.escape(message)):
        list(form.file().chunks)


def test_the_preamble_and_the_epilogue_count_towards_the_envelope() -> None:
    body = body_of([part("file", PNG, filename="a.png")])
    envelope = len(body) - len(PNG)
    limit = envelope + 200
    preamble = b"p" * 98 + b"\r\n"
    fine = preamble + body + b"e" * (limit - envelope - len(preamble))
    assert read(split(fine, 30), max_envelope_bytes=limit)[2] == PNG
    with pytest.raises(PayloadTooLarge, match=f"is over {limit} bytes"):
        form_of(split(b"p" * limit + b"\r\n" + body, 30), max_envelope_bytes=limit).file()
    form = form_of(split(fine + b"e", 30), max_envelope_bytes=limit)
    with pytest.raises(PayloadTooLarge, match=f"is over {limit} bytes"):
        list(form.file().chunks)


def test_the_file_data_does_not_count_towards_the_envelope() -> None:
    big = bytes(300 * 1024)
    body = body_of([part("title", "t"), part("file", big, filename="a.png")])
    assert read(split(body, 64 * 1024), max_envelope_bytes=1024)[2] == big


def test_sizes_in_messages_are_in_kib() -> None:
    body = body_of([part("title", "t" * (64 * 1024 + 1)), part("file", PNG, filename="a")])
    with pytest.raises(PayloadTooLarge, match=r"'title' is over 64 KiB: send at most 64 KiB$"):
        form_of([body]).file()


def test_a_client_gone_propagates_from_file() -> None:
    gone = ClientGone()

    def receive() -> bytes | None:
        raise gone

    form = Pulled(CONTENT_TYPE, receive, text_fields=TEXT_FIELDS)
    with pytest.raises(ClientGone) as raised:
        form.file()
    assert raised.value is gone


def test_a_client_gone_propagates_from_the_chunks_after_the_data_received() -> None:
    gone = ClientGone()
    body = body_of([part("file", PNG, filename="a.png")])
    chunks = iter(split(body[:-100], 64))

    def receive() -> bytes | None:
        chunk = next(chunks, None)
        if chunk is None:
            raise gone
        return chunk

    file = Pulled(CONTENT_TYPE, receive, text_fields=TEXT_FIELDS).file()
    got = bytearray()
    with pytest.raises(ClientGone) as raised:
        drain(file.chunks, got)
    assert raised.value is gone
    assert PNG.startswith(bytes(got))
    assert len(got) > 0


def test_a_text_field_cannot_also_be_the_file() -> None:
    with pytest.raises(ValueError, match="cannot be both"):
        StreamingForm(CONTENT_TYPE, text_fields=("file", "title"))


# Memory: a big file goes through without being held


def test_a_64_mib_file_streams_in_bounded_memory() -> None:
    mib = 1024 * 1024
    block = bytes(range(256)) * (mib // 256)
    head = (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
    )
    tail = b'\r\n--b0undary\r\nContent-Disposition: form-data; name="title"\r\n\r\nbig\r\n'
    tail += b"--b0undary--\r\n"

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(64):
            yield block
        yield tail

    expected = hashlib.sha256()
    for _ in range(64):
        expected.update(block)

    chunks = body()
    tracemalloc.start()
    try:
        form = Pulled(CONTENT_TYPE, lambda: next(chunks, None), text_fields=TEXT_FIELDS)
        digest, size = hashlib.sha256(), 0
        for chunk in form.file().chunks:
            digest.update(chunk)
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (size, digest.hexdigest()) == (64 * mib, expected.hexdigest())
    assert form.fields == {"title": "big"}
    assert peak < 8 * mib


# Properties

BCHARS = string.ascii_letters + string.digits + "'()+_,-./:=?"
boundaries = st.builds(
    lambda inner, last: inner + last,
    st.text(alphabet=BCHARS + " ", max_size=69),
    st.sampled_from(BCHARS),
)
filenames = st.text(
    alphabet=st.characters(exclude_characters='"\\', exclude_categories=("Cs", "Cc")),
    max_size=20,
)


@st.composite
def file_data(draw: st.DrawFn, delimiter: bytes) -> bytes:
    """Binary data up to ~300 KB, with partial delimiters, CRs and dashes at random places."""
    pieces = draw(
        st.lists(
            st.one_of(
                st.binary(max_size=40),
                st.integers(1, len(delimiter) - 1).map(lambda k: delimiter[:k]),
                st.sampled_from([b"\r", b"\n", b"\r\n", b"--", b"\r\n--", b"\r\n\r\n"]),
                st.tuples(st.integers(0, 2**32), st.integers(0, 120_000)).map(
                    lambda seed_size: random.Random(seed_size[0]).randbytes(seed_size[1])
                ),
            ),
            max_size=8,
        )
    )
    return b"".join(pieces)


@attrs.frozen
class Upload:
    content_type: str
    body: bytes
    delimiter: bytes
    before: dict[str, str]
    after: dict[str, str]
    filename: str | None
    file_type: str | None
    data: bytes
    file_offset: int  # where the file's data starts in the body

    @property
    def envelope(self) -> int:
        return len(self.body) - len(self.data)


@st.composite
def uploads(draw: st.DrawFn) -> Upload:
    boundary = draw(boundaries)
    delimiter = b"\r\n--" + boundary.encode()
    names = draw(st.lists(st.sampled_from(TEXT_FIELDS), unique=True))
    values = {name: draw(st.text(max_size=30)) for name in names}
    cut = draw(st.integers(0, len(names)))
    data = draw(file_data(delimiter))
    filename = draw(st.none() | filenames)
    file_type = draw(st.sampled_from([None, "image/png", "application/octet-stream; x=y"]))
    # A client picks a boundary its data does not hold.
    assume(all(delimiter not in value for value in [data, *(v.encode() for v in values.values())]))
    headers = {"Content_Type": file_type} if file_type else {}
    parts = [part(name, values[name]) for name in names[:cut]]
    parts.append(part("file", data, filename=filename, **headers))
    parts += [part(name, values[name]) for name in names[cut:]]
    preamble = draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b"a preamble\r\n", b"--\r\n"]))
    up_to_file = body_of([*parts[:cut], (parts[cut][0], b"")], boundary)
    file_offset = len(preamble) + len(up_to_file) - len(f"\r\n--{boundary}--\r\n")
    epilogue = draw(st.sampled_from([b"", b"\r\n", b"the end\r\n"]))
    return Upload(
        content_type=f'multipart/form-data; boundary="{boundary}"',
        body=preamble + body_of(parts, boundary) + epilogue,
        delimiter=delimiter,
        before={name: values[name] for name in names[:cut]},
        after={name: values[name] for name in names[cut:]},
        filename=filename,
        file_type=file_type,
        data=data,
        file_offset=file_offset,
    )


@st.composite
def chunkings(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """The body split at random points (empty chunks too), or in equal chunks down to 1 byte for
    small bodies."""
    if draw(st.booleans()):
        size = draw(st.integers(max(1, len(body) // 2000), max(1, len(body))))
        return split(body, size)
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=30)))
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upload=uploads(), data=st.data())
def test_any_split_of_a_body_reads_the_same(upload: Upload, data: st.DataObject) -> None:
    chunks = data.draw(chunkings(upload.body))
    feed = Feed(chunks)
    limit = upload.envelope  # the limit is exact: everything but the file data, not a byte less
    form = Pulled(upload.content_type, feed, text_fields=TEXT_FIELDS, max_envelope_bytes=limit)
    file = form.file()
    assert upload.before.items() <= form.fields.items()
    assert (file.filename, file.content_type) == (upload.filename, upload.file_type)
    got = bytearray()
    last_call = 0
    for chunk in file.chunks:
        # One chunk per receive(), never more than it returned and a held-back partial boundary.
        assert chunk
        assert feed.calls > last_call
        last_call = feed.calls
        assert len(chunk) <= len(chunks[feed.calls - 1]) + len(upload.delimiter) + 1
        assert len(chunk) <= max(map(len, chunks)) + len(upload.delimiter) + 1
        got += chunk
    assert got == upload.data
    assert form.fields == upload.before | upload.after
    assert feed.ended

    # A byte less and the chunks fail; less than what comes before the file and file() does.
    form = Pulled(
        upload.content_type, Feed(chunks), text_fields=TEXT_FIELDS, max_envelope_bytes=limit - 1
    )
    with pytest.raises(PayloadTooLarge):
        list(form.file().chunks)
    form = Pulled(
        upload.content_type,
        Feed(chunks),
        text_fields=TEXT_FIELDS,
        max_envelope_bytes=upload.file_offset - 1,
    )
    with pytest.raises(PayloadTooLarge):
        form.file()


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    upload = draw(uploads())
    body = bytearray(upload.body)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        match draw(st.sampled_from(["flip", "delete", "insert", "repeat", "truncate"])):
            case "flip" if at < len(body):
                body[at] ^= draw(st.integers(1, 255))
            case "delete":
                del body[at : at + draw(st.integers(1, 80))]
            case "insert":
                body[at:at] = draw(st.binary(min_size=1, max_size=30))
            case "repeat":
                body[at:at] = body[at : at + draw(st.integers(1, 200))]
            case "truncate":
                del body[at:]
    return upload.content_type, bytes(body)


fuzzed_bodies = st.one_of(
    mutated(),
    st.tuples(st.just(CONTENT_TYPE), st.binary(max_size=300)),
    st.tuples(
        st.just(CONTENT_TYPE),
        st.lists(
            st.sampled_from(
                [
                    b"--b0undary",
                    b"--b0undary--",
                    b"\r\n",
                    b"\r",
                    b"-",
                    b'Content-Disposition: form-data; name="file"; filename="a"',
                    b'Content-Disposition: form-data; name="title"',
                    b"Content-Disposition: form-data",
                    b"Content-Type: image/png",
                    b": ",
                    b"\xff",
                    b"data",
                ]
            ),
            max_size=40,
        ).map(b"".join),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=fuzzed_bodies, data=st.data(), small=st.booleans())
def test_no_body_raises_anything_but_a_client_error(
    case: tuple[str, bytes], data: st.DataObject, small: bool
) -> None:
    content_type, body = case
    feed = Feed(data.draw(chunkings(body)))
    form: Pulled | None = None
    try:
        form = Pulled(
            content_type,
            feed,
            text_fields=TEXT_FIELDS,
            max_text_bytes=20 if small else 64 * 1024,
            max_envelope_bytes=300 if small else 256 * 1024,
        )
        file = form.file()
        assert isinstance(file, PulledFile)
        for chunk in file.chunks:
            assert isinstance(chunk, bytes)
            assert chunk
    except (InvalidInput, PayloadTooLarge) as error:
        message = str(error)
        assert message.strip()
        return
    assert feed.ended
    assert set(form.fields) <= set(TEXT_FIELDS)
