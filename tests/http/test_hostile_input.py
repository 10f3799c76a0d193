"""Hostile input to every parser of client input in the HTTP API, driven by Hypothesis through
the app in this process (memory backend, no server: seconds, not minutes): JSON bodies and the
JSON fields of an upload, Range, If-Match, If-None-Match, X-Content-SHA256, Content-Length, the
list's filters and cursors, Authorization, paths, and multipart bodies (boundaries, part
headers, field names and values). Whatever arrives, the answer is never a 5xx, and every 4xx is
the documented error: the body {error, message, request_id} with the request's id.

Below the properties: the findings of the attack on `imagecore serve` that answered 500 (deep
JSON, Range and Content-Length numbers, JSON that is no Unicode text), each pinned to its
answer; and what clients send today that must keep working."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any
from urllib.parse import quote, quote_from_bytes

import anyio.from_thread
import attrs
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from entrypoints.container import build_container, derived_key
from entrypoints.http.parameters import LIST_PARAMETERS
from entrypoints.settings import Settings
from tests.support.api_assertions import assert_error, assert_matches_schema
from tests.support.sample_images import image_bytes

SECRET = "hostile-input-" + "s" * 32
OWNER = "alice"
PNG = image_bytes("image/png", 16, 12)

hostile = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@attrs.frozen
class Service:
    """The app of a memory-backed container, on an event loop of its own in this process, with
    what the examples aim at: two images of the owner's, a cursor and an upload slot."""

    call: Callable[..., httpx.Response]
    auth: dict[str, str]
    image: dict[str, Any]
    cursor: str
    cursor_key: bytes
    slot: dict[str, Any]

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        kwargs["headers"] = {**self.auth, **kwargs.get("headers", {})}
        return self.call(method, url, **kwargs)

    @property
    def image_path(self) -> str:
        return f"/images/{self.image['image_id']}"


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    container = build_container(
        Settings(backend="memory", token_secret=SECRET, rate_limit_burst=10**9)
    )
    transport = httpx.ASGITransport(app=container.http_app())
    with anyio.from_thread.start_blocking_portal() as portal:
        client = httpx.AsyncClient(transport=transport, base_url="http://server")

        def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
            return portal.call(partial(client.request, method, url, **kwargs))

        auth = {"Authorization": f"Bearer {container.tokens().issue(OWNER)}"}
        files = {"file": ("photo.png", PNG, "image/png")}
        for _ in range(2):
            uploaded = call("POST", "/images", headers=auth, files=files)
            assert uploaded.status_code == 201, uploaded.text
        page = call("GET", "/images", headers=auth, params={"limit": "1"}).json()
        slot = call("POST", "/uploads", headers=auth, json={"content_type": "image/png"})
        assert slot.status_code == 201, slot.text
        yield Service(
            call=call,
            auth=auth,
            image=uploaded.json(),
            cursor=page["next_cursor"],
            cursor_key=derived_key(SECRET.encode(), "cursor"),
            slot=slot.json(),
        )
        portal.call(client.aclose)
    assert container.local_jobs().join(timeout=30)


def answered(response: httpx.Response) -> httpx.Response:
    """The response, once it is known to be no server error, and the documented error if it
    is a client error."""
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert_matches_schema(body, "Error")
        assert body["message"]
        assert body["request_id"] == response.headers["x-request-id"]
    return response


# --- what hostile input is made of --------------------------------------------------------------


def as_header(text: str) -> bytes:
    """The bytes a client sends for ``text`` in a header: Latin-1 where it can, else UTF-8 (with
    lone surrogates as the invalid bytes they would be)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


header_texts = st.text(st.characters(exclude_characters="\r\n\x00"), max_size=60)
header_bytes = st.binary(max_size=60).map(lambda raw: raw.translate(None, b"\r\n\x00"))


def header_values(structured: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Header values from ``structured`` text, any text, or any bytes a header line can hold."""
    return st.one_of(structured.map(as_header), header_texts.map(as_header), header_bytes)


numbers = st.one_of(
    st.integers(0, 2**70).map(str),
    st.integers(1, 6000).map(lambda length: "9" * length),  # past int()'s 4300 digits
    st.integers(1, 6000).map(lambda length: "0" * length + "7"),
    st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=4),  # "²", "٣"
    st.sampled_from(["", "-1", "+1", " 1", "1 ", "1_0", "0x1f", "1e3", "1.5", "²", "٣"]),
)

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)
)  # floats: NaN and ±Infinity; text: lone surrogates
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
FIELDS = ("title", "description", "tags", "metadata", "visibility", "filename", "content_type")
odd_numbers = st.sampled_from(
    ["NaN", "-Infinity", "1e400", "-1e-400", "9" * 5000, "-" + "9" * 101, str(2**64), "1.5e999"]
)


NESTINGS = {"[": "]", '{"a":': "}", '{"tags":[': "]}", '{"metadata":{"k":': "}}"}


def _nested(opening: str, depth: int, closed: bool) -> str:
    return opening * depth + "1" + (NESTINGS[opening] * depth if closed else "")


json_texts = st.one_of(
    json_values.map(json.dumps),  # NaN, lone surrogates as \ud800 escapes, integers of any size
    st.dictionaries(
        st.sampled_from((*FIELDS, "size")) | st.text(max_size=8), json_values, max_size=4
    ).map(json.dumps),
    st.builds(_nested, st.sampled_from(list(NESTINGS)), st.integers(1, 30_000), st.booleans()),
    st.builds(
        '{{"{0}": {1}, "{0}": {2}}}'.format, st.sampled_from(FIELDS), odd_numbers, odd_numbers
    ),
    st.builds('{{"metadata": {{"k": {}}}}}'.format, odd_numbers),
    st.builds('{{"size": {}}}'.format, odd_numbers),
    st.text(max_size=40),
)
json_bodies = st.one_of(
    json_texts.map(lambda text: text.encode("utf-8", "surrogatepass")),
    json_texts.map(lambda text: text.encode("utf-16")),
    st.binary(max_size=80),
)
json_media_types = st.sampled_from(
    [
        "application/json",
        "application/merge-patch+json",
        "application/json; charset=utf-16",
        "text/plain",
        "",
    ]
)
tags_texts = st.one_of(json_texts, st.lists(st.text(max_size=10), max_size=5).map(",".join))


# --- JSON: bodies, and the fields of an upload ----------------------------------------------------


@hostile
@given(body=json_bodies, media_type=json_media_types)
@example(body=b"[" * 30_000, media_type="application/json")
def test_any_update_body_is_answered_as_documented(
    service: Service, body: bytes, media_type: str
) -> None:
    answered(
        service.request(
            "PATCH", service.image_path, headers={"Content-Type": media_type}, content=body
        )
    )


@hostile
@given(body=json_bodies, media_type=json_media_types)
@example(body=b"[" * 30_000, media_type="application/json")
def test_any_upload_slot_body_is_answered_as_documented(
    service: Service, body: bytes, media_type: str
) -> None:
    answered(
        service.request("POST", "/uploads", headers={"Content-Type": media_type}, content=body)
    )


field_values = st.one_of(
    json_texts.map(lambda text: text.encode("utf-8", "surrogatepass")),
    tags_texts.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
)


@hostile
@given(fields=st.dictionaries(st.sampled_from(FIELDS[:5]), field_values, max_size=3))
def test_any_fields_of_an_upload_form_are_answered_as_documented(
    service: Service, fields: dict[str, bytes]
) -> None:
    parts = [(name, (None, value)) for name, value in fields.items()]
    files = [("file", ("photo.png", PNG, "image/png")), *parts]
    answered(service.request("POST", "/images", files=files))


def raw_query(pairs: list[tuple[str, bytes]]) -> str:
    """A query string of any bytes, percent-encoded: invalid UTF-8 gets through as it would."""
    return "&".join(
        f"{quote(name, safe='')}={quote_from_bytes(value, safe='')}" for name, value in pairs
    )


query_values = field_values.map(lambda value: value[:5000])
"""Values short enough for a URL (httpx refuses one of over 64 KiB; so would a server)."""


@hostile
@given(
    fields=st.lists(st.tuples(st.sampled_from(("filename", *FIELDS[:5])), query_values), max_size=3)
)
def test_any_fields_of_a_raw_upload_are_answered_as_documented(
    service: Service, fields: list[tuple[str, bytes]]
) -> None:
    answered(
        service.request(
            "POST",
            f"/images?{raw_query(fields)}",
            headers={"Content-Type": "image/png"},
            content=PNG,
        )
    )


# --- headers: Range, If-Match, If-None-Match, X-Content-SHA256, Content-Length, Authorization --


units = st.sampled_from(["bytes", "BYTES", " bytes", "bytes\t", "items", ""])
range_texts = st.one_of(
    st.builds("{}={}-{}".format, units, numbers, numbers),
    st.builds("{}=-{}".format, units, numbers),
    st.lists(st.builds("{}-{}".format, numbers, numbers), min_size=2, max_size=3).map(
        lambda specs: "bytes=" + ",".join(specs)
    ),
)


@hostile
@given(
    range_header=header_values(range_texts),
    if_range=st.none() | header_values(st.sampled_from(['"v1"', "W/x"])),
    target=st.sampled_from(["download", "thumbnail"]),
)
@example(range_header=b"bytes=" + b"9" * 5000 + b"-", if_range=None, target="download")
@example(range_header="bytes=²-".encode("latin-1"), if_range=None, target="download")
def test_any_range_is_answered_as_documented(
    service: Service, range_header: bytes, if_range: bytes | None, target: str
) -> None:
    headers = {"Range": range_header}
    if if_range is not None:
        headers["If-Range"] = if_range
    answered(service.request("GET", f"{service.image_path}/{target}", headers=headers))


etags = st.one_of(
    numbers,
    numbers.map('"v{}"'.format),
    numbers.map('W/"v{}"'.format),
    st.sampled_from(["*", " * ", "W/*", '"', '""', "W/", ",", '"v1"', '"v2"', '"v3"']),
    st.just(f'"{hashlib.sha256(PNG).hexdigest()}"'),  # the downloads' ETag
    st.text(alphabet="0123456789abcdefABCDEF", max_size=70).map('"{}"'.format),
)
etag_lists = st.lists(etags, min_size=1, max_size=4).map(", ".join)


@hostile
@given(if_match=header_values(etag_lists))
@example(if_match="²".encode("latin-1"))
@example(if_match=b'"v' + b"9" * 5000 + b'"')
def test_any_if_match_is_answered_as_documented(service: Service, if_match: bytes) -> None:
    answered(service.request("PATCH", service.image_path, headers={"If-Match": if_match}, json={}))


@hostile
@given(
    if_none_match=header_values(etag_lists),
    target=st.sampled_from(["", "/download", "/thumbnail"]),
)
def test_any_if_none_match_of_a_read_is_answered_as_documented(
    service: Service, if_none_match: bytes, target: str
) -> None:
    answered(
        service.request(
            "GET", service.image_path + target, headers={"If-None-Match": if_none_match}
        )
    )


hashes = st.one_of(
    st.just(hashlib.sha256(PNG).hexdigest()),
    st.just(hashlib.sha256(PNG).hexdigest().upper()),
    st.text(alphabet="0123456789abcdefABCDEF", max_size=70),
    st.text(max_size=70),
)


@hostile
@given(
    declared=st.none() | header_values(hashes),
    if_none_match=st.none() | header_values(hashes.map('"{}"'.format) | etag_lists),
)
def test_any_declared_content_hash_is_answered_as_documented(
    service: Service, declared: bytes | None, if_none_match: bytes | None
) -> None:
    headers = {"Content-Type": "image/png"}
    if declared is not None:
        headers["X-Content-SHA256"] = declared
    if if_none_match is not None:
        headers["If-None-Match"] = if_none_match
    answered(service.request("POST", "/images", headers=headers, content=PNG))


@hostile
@given(
    content_length=header_values(numbers),
    target=st.sampled_from(["POST /uploads", "PATCH", "POST /images", "POST /uploads/{slot}"]),
)
def test_any_content_length_is_answered_as_documented(
    service: Service, content_length: bytes, target: str
) -> None:
    headers: dict[str, str | bytes] = {"Content-Length": content_length}
    match target:
        case "POST /uploads":
            method, url, body = "POST", "/uploads", b'{"content_type": "image/png"}'
            headers["Content-Type"] = "application/json"
        case "PATCH":
            method, url, body = "PATCH", service.image_path, b'{"title": "t"}'
            headers["Content-Type"] = "application/json"
        case "POST /images":
            method, url, body = "POST", "/images", PNG
            headers["Content-Type"] = "image/png"
        case _:
            method, url, body = "POST", f"/uploads/{service.slot['upload_id']}", PNG
            headers["Content-Type"] = "image/png"
    answered(service.request(method, url, headers=headers, content=body))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


jwt_like = st.builds(
    lambda header, payload, signature: f"{_b64(header)}.{_b64(payload)}.{_b64(signature)}",
    json_bodies,
    json_bodies,
    st.binary(max_size=40),
)


@hostile
@given(
    authorization=header_values(
        st.one_of(jwt_like.map("Bearer {}".format), st.text(max_size=40).map("Bearer {}".format))
    )
)
def test_any_authorization_is_answered_as_documented(
    service: Service, authorization: bytes
) -> None:
    response = service.call("GET", "/images", headers={"Authorization": authorization})
    # 431 for a token of a deep JSON text past the limit on headers.
    assert answered(response).status_code in (401, 431)


# --- the list: filters and cursors --------------------------------------------------------------


offsets = st.integers(-24 * 60 + 1, 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
dates = st.one_of(
    st.datetimes(timezones=st.none() | offsets).map(datetime.isoformat),
    st.datetimes().map(lambda moment: moment.isoformat(sep=" ", timespec="minutes")),
    st.dates().map(lambda day: day.isoformat()),
    st.dates().map(lambda day: day.strftime("%Y%m%d")),
    st.sampled_from(
        [
            "0001-01-01",
            "9999-12-31",
            "0001-01-01T00:00+01:00",
            "9999-12-31T23:59:59.999999-23:59",
            "2026-W01",
            "2026-13-01",
            "+2026-01-01",
            "2026-01-01T24:00",
            "2026-01-01Z",
            "Z",
            "T",
        ]
    ),
)
list_values = st.one_of(
    dates,
    numbers,
    st.sampled_from(["asc", "desc", "ASC", "image/png", "a,b,,c"]),
    st.text(max_size=30),
).map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(max_size=30)


@hostile
@given(
    parameters=st.lists(
        st.tuples(st.sampled_from(LIST_PARAMETERS) | st.text(max_size=6), list_values),
        max_size=4,
    )
)
def test_any_list_filters_are_answered_as_documented(
    service: Service, parameters: list[tuple[str, bytes]]
) -> None:
    answered(service.request("GET", f"/images?{raw_query(parameters)}"))


def signed_cursor(payload: bytes, key: bytes) -> str:
    """A cursor in the documented shape around any payload, signed with the server's key: what
    only a leak of that key would let a client send."""
    body = _b64(payload)
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


@st.composite
def cursors(draw: st.DrawFn, real: str, key: bytes) -> str:
    match draw(st.sampled_from(["text", "mutated", "signed", "signed fields"])):
        case "text":
            return draw(st.text(max_size=600))
        case "mutated":
            at = draw(st.integers(0, len(real)))
            return real[:at] + draw(st.text(max_size=5)) + real[at + draw(st.integers(0, 5)) :]
        case "signed":  # past 512 characters a cursor is refused before its signature is read
            return signed_cursor(draw(json_bodies)[:400], key)
        case _:
            fields = json.loads(base64.urlsafe_b64decode(real.split(".")[0] + "=="))
            fields.update(draw(st.dictionaries(st.sampled_from("vtife"), json_values, max_size=3)))
            return signed_cursor(json.dumps(fields).encode(), key)


@hostile
@given(data=st.data(), limit=st.sampled_from(["1", "2"]))
def test_any_cursor_is_answered_as_documented(
    service: Service, data: st.DataObject, limit: str
) -> None:
    cursor = data.draw(cursors(service.cursor, service.cursor_key))
    query = raw_query(
        [("cursor", cursor.encode("utf-8", "surrogatepass")), ("limit", limit.encode())]
    )
    answered(service.request("GET", f"/images?{query}"))


# --- paths ------------------------------------------------------------------------------------


@hostile
@given(
    segment=st.binary(max_size=40)
    | st.text(max_size=40).map(lambda text: text.encode("utf-8", "surrogatepass")),
    route=st.sampled_from(
        [
            ("GET", "/images/{}"),
            ("DELETE", "/images/{}"),
            ("GET", "/images/{}/download"),
            ("POST", "/uploads/{}"),
        ]
    ),
)
def test_any_path_is_answered_as_documented(
    service: Service, segment: bytes, route: tuple[str, str]
) -> None:
    method, template = route
    answered(service.request(method, template.format(quote_from_bytes(segment, safe=""))))


# --- multipart bodies ---------------------------------------------------------------------------


BCHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=? "
boundaries = st.one_of(
    st.sampled_from(["b0undary", "a" * 70, "a" * 71, "x ", 'q"uote', "é", "--"]),
    st.text(alphabet=BCHARS, min_size=1, max_size=72),
    header_texts,
)
part_names = (
    st.sampled_from(
        [
            "file",
            "title",
            "description",
            "tags",
            "metadata",
            "visibility",
            "expires",
            "signature",
            "Content-Type",
        ]
    )
    | header_texts
)


@st.composite
def part_heads(draw: st.DrawFn) -> bytes:
    name = as_header(draw(part_names))
    disposition = draw(
        st.sampled_from(
            [
                b'form-data; name="%s"',
                b'form-data; name="%s"; filename="a.png"',
                b"form-data; name=%s",
                b"form-data; name=\"%s\"; filename*=UTF-8''%%C3%%A9",
                b'form-data; filename="%s"',
                b"%s",
            ]
        )
    )
    lines = [
        b"Content-Disposition: " + (disposition % name if b"%s" in disposition else disposition)
    ]
    if draw(st.booleans()):
        lines.append(b"Content-Type: " + draw(header_values(st.just("image/png"))))
    lines.extend(draw(st.lists(header_bytes, max_size=2)))
    return b"\r\n".join(lines)


@st.composite
def forms(draw: st.DrawFn, file_fields: dict[str, str]) -> tuple[bytes, bytes]:
    """A multipart Content-Type and body: parts with hostile heads and contents, the file among
    them or not, the upload link's fields or not, cut or changed here and there."""
    boundary = as_header(draw(boundaries))
    parts = [(draw(part_heads()), draw(field_values)) for _ in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        parts.extend(
            (b'Content-Disposition: form-data; name="%s"' % name.encode(), value.encode())
            for name, value in file_fields.items()
        )
    if draw(st.booleans()):
        at = draw(st.integers(0, len(parts)))
        parts.insert(
            at,
            (
                b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n'
                b"Content-Type: image/png",
                PNG,
            ),
        )
    body = bytearray()
    for head, content in parts:
        body += b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + content + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(body)))
        match draw(st.sampled_from(["flip", "delete", "insert", "truncate"])):
            case "flip" if at < len(body):
                body[at] ^= draw(st.integers(1, 255))
            case "delete":
                del body[at : at + draw(st.integers(1, 40))]
            case "insert":
                body[at:at] = draw(st.binary(min_size=1, max_size=20))
            case "truncate":
                del body[at:]
    content_type = draw(
        st.sampled_from(
            [
                b"multipart/form-data; boundary=%s",
                b'multipart/form-data; boundary="%s"',
                b"multipart/form-data; boundary=%s; boundary=other",
                b"multipart/form-data",
                b"multipart/form-data; charset=utf-8; boundary=%s",
                b"multipart/mixed; boundary=%s",
            ]
        )
    )
    if b"%s" in content_type:
        content_type = content_type % boundary
    return content_type, bytes(body)


@hostile
@given(data=st.data(), to_slot=st.booleans())
def test_any_multipart_body_is_answered_as_documented(
    service: Service, data: st.DataObject, to_slot: bool
) -> None:
    slot_fields: dict[str, str] = service.slot["fields"] if to_slot else {}
    content_type, body = data.draw(forms(slot_fields))
    url = f"/uploads/{service.slot['upload_id']}" if to_slot else "/images"
    answered(service.request("POST", url, headers={"Content-Type": content_type}, content=body))


# --- the findings, one by one ---------------------------------------------------------------------


DEEP = "[" * 30_000


def deep_patch(service: Service) -> httpx.Response:
    return service.request(
        "PATCH", service.image_path, headers={"Content-Type": "application/json"}, content=DEEP
    )


def deep_slot(service: Service) -> httpx.Response:
    return service.request(
        "POST", "/uploads", headers={"Content-Type": "application/json"}, content=DEEP
    )


def deep_form_field(name: str, service: Service) -> httpx.Response:
    files = [("file", ("photo.png", PNG, "image/png")), (name, (None, DEEP.encode()))]
    return service.request("POST", "/images", files=files)


def deep_query_field(name: str, service: Service) -> httpx.Response:
    return service.request(
        "POST",
        "/images",
        params={name: DEEP[:5000]},
        headers={"Content-Type": "image/png"},
        content=PNG,
    )


@pytest.mark.parametrize(
    ("send", "field"),
    [
        (deep_patch, "the body"),
        (deep_slot, "the body"),
        (partial(deep_form_field, "metadata"), "metadata"),
        (partial(deep_form_field, "tags"), "tags"),
        (partial(deep_query_field, "metadata"), "metadata"),
        (partial(deep_query_field, "tags"), "tags"),
    ],
    ids=[
        "PATCH body",
        "POST /uploads body",
        "form metadata",
        "form tags",
        "query metadata",
        "query tags",
    ],
)
def test_deeply_nested_json_is_a_400_that_names_where_it_was(
    service: Service, send: Callable[[Service], httpx.Response], field: str
) -> None:
    body = assert_error(send(service), 400, "InvalidInput")
    assert body["message"].startswith(f"{field} is nested more than"), body


def download(service: Service, range_header: str | bytes) -> httpx.Response:
    return service.request("GET", f"{service.image_path}/download", headers={"Range": range_header})


def test_a_range_that_starts_thousands_of_digits_in_is_416(service: Service) -> None:
    assert_error(download(service, "bytes=" + "9" * 5000 + "-"), 416, "RangeNotSatisfiable")


@pytest.mark.parametrize(
    "range_header",
    ["bytes=0-" + "9" * 5000, "bytes=-" + "9" * 5000, "bytes=-" + "0" * 5000 + "99999"],
    ids=["an end", "a suffix", "a suffix of leading zeros"],
)
def test_a_range_end_or_suffix_of_thousands_of_digits_is_the_whole_image(
    service: Service, range_header: str
) -> None:
    response = download(service, range_header)
    size = service.image["size"]
    assert response.status_code == 206, response.text
    assert response.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
    assert response.content == PNG


def test_a_range_within_a_number_of_many_leading_zeros_is_read(service: Service) -> None:
    response = download(service, "bytes=" + "0" * 5000 + "2-" + "0" * 5000 + "5")
    assert response.status_code == 206, response.text
    assert response.content == PNG[2:6]


@pytest.mark.parametrize(
    "range_header",
    [
        "bytes=²-".encode("latin-1"),  # what str.isdigit() calls a digit, and int() refuses
        "bytes=0-²".encode("latin-1"),
        "bytes=-²".encode("latin-1"),
        "bytes=²-".encode(),
        "bytes=\u0663-\u0665".encode(),  # Arabic-Indic digits, which int() reads
        b"bytes=1_0-",
        b"bytes=+1-",
    ],
)
def test_a_range_of_other_digits_is_ignored_and_the_whole_image_sent(
    service: Service, range_header: bytes
) -> None:
    response = download(service, range_header)
    assert response.status_code == 200, response.text
    assert response.content == PNG


def test_a_content_length_of_other_digits_is_not_a_number(service: Service) -> None:
    response = service.request(
        "POST",
        "/uploads",
        headers={"Content-Type": "application/json", "Content-Length": "²".encode("latin-1")},
        content=b'{"content_type": "image/png"}',
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "path", "media_type"),
    [
        ("POST", "/uploads", "application/json"),
        ("PATCH", "{image}", "application/json"),
        ("POST", "/images", "image/png"),
    ],
)
def test_a_content_length_of_thousands_of_digits_is_too_large(
    service: Service, method: str, path: str, media_type: str
) -> None:
    response = service.request(
        method,
        path.format(image=service.image_path),
        headers={"Content-Type": media_type, "Content-Length": "9" * 5000},
        content=b"{}",
    )
    assert_error(response, 413, "PayloadTooLarge")


@pytest.mark.parametrize(
    "body",
    [b'{"\\ud800": 1}', b'{"title": "\\udfff"}', b'{"\xed\xa0\x80": 1}'],
    ids=["a key escaping a lone surrogate", "a value escaping one", "a key of CESU-8 bytes"],
)
@pytest.mark.parametrize("target", ["PATCH", "POST /uploads"])
def test_json_that_is_not_unicode_text_is_a_400(service: Service, body: bytes, target: str) -> None:
    method, path = ("PATCH", service.image_path) if target == "PATCH" else ("POST", "/uploads")
    response = service.request(
        method, path, headers={"Content-Type": "application/json"}, content=body
    )
    assert_error(response, 400, "InvalidInput")


def test_a_json_key_given_twice_is_a_400_not_a_guess(service: Service) -> None:
    response = service.request(
        "PATCH",
        service.image_path,
        headers={"Content-Type": "application/json"},
        content=b'{"visibility": "private", "visibility": "public"}',
    )
    body = assert_error(response, 400, "InvalidInput")
    assert "'visibility' more than once" in body["message"]
    image = service.request("GET", service.image_path).json()
    assert image["visibility"] == "private"


# --- what clients send today still works --------------------------------------------------------


def test_integers_beyond_64_bits_in_metadata_are_still_refused_by_name(service: Service) -> None:
    # orjson would have read 2**64 as a float and stored 1.8446744073709552e+19.
    response = service.request(
        "PATCH",
        service.image_path,
        content=json.dumps({"metadata": {"n": 2**64}}),
        headers={"Content-Type": "application/json"},
    )
    body = assert_error(response, 400, "InvalidInput")
    assert "64-bit" in body["message"]


def test_a_json_body_with_a_byte_order_mark_is_still_read(service: Service) -> None:
    response = service.request(
        "PATCH",
        service.image_path,
        headers={"Content-Type": "application/json"},
        content=b'\xef\xbb\xbf{"title": "with a BOM"}',
    )
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "with a BOM"


def test_tags_and_metadata_as_json_in_a_form_and_a_query_are_still_read(service: Service) -> None:
    fields = {"tags": '["Beach", "sunset"]', "metadata": '{"camera": "x", "n": 1.5}'}
    files = [
        ("file", ("photo.png", PNG, "image/png")),
        *((k, (None, v.encode())) for k, v in fields.items()),
    ]
    for response in (
        service.request("POST", "/images", files=files),
        service.request(
            "POST", "/images", params=fields, headers={"Content-Type": "image/png"}, content=PNG
        ),
    ):
        assert response.status_code == 201, response.text
        assert response.json()["tags"] == ["beach", "sunset"]
        assert response.json()["metadata"] == {"camera": "x", "n": 1.5}
