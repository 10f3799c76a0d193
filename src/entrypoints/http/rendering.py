"""Results as HTTP answers: an image's JSON resource, an upload slot, and the bytes of an image
or its thumbnail, in the fastest way the blob store allows."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from entrypoints.http.conditional import etag_matches, requested_range
from imagecore.convert import format_instant, image_to_resource
from imagecore.disposition import attachment_disposition
from imagecore.errors import NotFound
from imagecore.model import Image
from imagecore.recent_reads import RecentReads
from imagecore.results import Download, Page, UploadSlot


class RenderedImages:
    """The JSON of the images rendered last, by image id and version: a version of an image
    never changes (every change makes a new one, as its ETag tells), so a page read again
    renders nothing: rendering was a third of a page's time. The least recently used entry
    goes first."""

    def __init__(self, capacity: int) -> None:
        self._kept: RecentReads[bytes] = RecentReads(capacity)

    def json(self, image: Image) -> bytes:
        # An image is shown to others without its private metadata (imagecore.privacy): the
        # same version, fewer fields. Of one version that is the only difference there can be.
        key = (image.image_id, image.version, len(image.metadata))
        rendered = self._kept.get(key)
        if rendered is None:
            # Only validated, stored data comes here: text without lone surrogates, integers
            # within 64 bits, finite numbers; all of which orjson renders as json would.
            rendered = orjson.dumps(image_to_resource(image))
            self._kept.put(key, rendered)
        return rendered


rendered_images = RenderedImages(capacity=4096)


class _RawResponse(Response):
    """A body and headers already in the bytes ASGI sends: Starlette's own step from a dict
    (lower-casing and encoding each name and value, looking for the length and type) was a
    tenth of the time of a read answered from memory."""

    def __init__(self, body: bytes, status: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = raw_headers


def resource_response(image: Image, status: int = 200, **headers: str) -> Response:
    body = rendered_images.json(image)
    raw_headers = [
        (b"etag", image.etag.encode()),
        (b"cache-control", b"private, no-cache"),
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
    ]
    raw_headers += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return _RawResponse(body, status, raw_headers)


class RenderedPages:
    """The JSON of the pages rendered last: the reads hand out a page they kept (see
    imagecore.recent_reads) as the same object until the store changes, so it is rendered once.
    Kept by the page's identity, holding the page so that its id is not reused meanwhile; the
    first rendered goes first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[int, tuple[Page, bytes]] = OrderedDict()

    def json(self, page: Page) -> bytes:
        kept = self._entries.get(id(page))
        if kept is not None and kept[0] is page:
            return kept[1]
        rendered = orjson.dumps(
            {
                "images": [orjson.Fragment(rendered_images.json(image)) for image in page.images],
                "count": len(page.images),
                "next_cursor": page.next_cursor,
            }
        )
        self._entries[id(page)] = (page, rendered)
        while len(self._entries) > self._capacity:
            try:
                self._entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break
        return rendered


rendered_pages = RenderedPages(capacity=64)


def page_response(page: Page) -> Response:
    return Response(
        rendered_pages.json(page),
        headers={"Cache-Control": "private, no-cache"},
        media_type="application/json",
    )


def slot_resource(slot: UploadSlot, base_url: str) -> dict[str, Any]:
    url = slot.url
    if url.startswith("/"):  # a link to this server: absolute, as the client posts it as is
        url = base_url.rstrip("/") + url
    return {
        "upload_id": slot.upload_id,
        "url": url,
        "fields": dict(slot.fields),
        "expires_at": format_instant(slot.expires_at),
        "max_bytes": slot.max_bytes,
        "image_url": f"/images/{slot.upload_id}",
    }


class WithoutRange:
    """Serves a FileResponse as a whole: range handling is ours, so it is done one way."""

    def __init__(self, response: FileResponse) -> None:
        self.response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"range", b"if-range")]
        await self.response({**scope, "headers": headers}, receive, send)


IMMUTABLE = "private, max-age=31536000, immutable"
"""For bytes a URL only ever names one content of (a rendition: see imagecore.blob_keys). Private:
what the embedded server sends needs the caller's token, and an image may stop being public."""


def bytes_response(
    request: Request, found: Download, *, immutable: bool = False, vary: str | None = None
) -> Response:
    """An image's bytes, or a rendition's, in the fastest way the blob store allows.
    ``immutable`` bytes may be kept by the client's cache for a year; ``vary`` names the
    request header that chose them."""
    etag = found.etag
    cache = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE if immutable else "private, max-age=0, must-revalidate",
    }
    if vary is not None:
        cache["Vary"] = vary
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=cache)
    if_range = request.headers.get("if-range")
    range_applies = found.size is not None and (if_range is None or if_range.strip() == etag)
    wanted = (
        requested_range(request.headers.get("range"), found.size)
        if range_applies and found.size is not None
        else None
    )
    # The blob store serves the bytes itself where it can, and honours Range there; what
    # needs no bytes (304, 416) is answered here first, the same whatever the backend. No
    # image byte ever passes through here on AWS (a Lambda's answer is at most 6 MB, and
    # read whole into memory): a stale If-Range is redirected too, and S3 answers it
    # itself, with the whole image, as the validator is not its own ETag.
    if found.presigned_url:
        redirect = {"ETag": etag, "Cache-Control": "no-store"}
        if vary is not None:
            redirect["Vary"] = vary
        return RedirectResponse(found.presigned_url, 307, headers=redirect)
    headers = {
        **cache,
        "Content-Disposition": attachment_disposition(found.filename),
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    }
    if found.size is not None:
        headers["Accept-Ranges"] = "bytes"
    if wanted is None and found.local_path is not None:
        # A local file's stat takes microseconds; left to FileResponse, it is a hop to a
        # worker thread and back, a tenth of the time a 1 MiB download takes. The server
        # sends the file itself (ASGI pathsend).
        try:
            stat_result = Path(found.local_path).stat()
        except FileNotFoundError:  # deleted since it was found
            raise NotFound("no such image") from None
        file = FileResponse(
            found.local_path,
            headers=headers,
            media_type=found.content_type,
            stat_result=stat_result,
        )
        return WithoutRange(file)  # type: ignore[return-value]
    body = iterate_in_threadpool(found.open(wanted))
    if wanted is None:
        if found.size is not None:
            headers["Content-Length"] = str(found.size)
        return StreamingResponse(body, 200, headers=headers, media_type=found.content_type)
    headers["Content-Length"] = str(wanted.length)
    headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{found.size}"
    return StreamingResponse(body, 206, headers=headers, media_type=found.content_type)
