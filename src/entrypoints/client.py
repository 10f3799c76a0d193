"""A client of the imagecore HTTP API, for the `imagecore` client commands.

It speaks only HTTP (httpx) and knows the API's contract, not the domain: resources stay the
JSON the server sent.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import re
import tempfile
import unicodedata
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp"})
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_MAX_FILENAME_BYTES = 255
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
}

Resource = dict[str, Any]


class ClientError(Exception):
    """A request that did not succeed: the server's error answer, or no answer at all."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    @property
    def unauthenticated(self) -> bool:
        return self.status == 401

    def __str__(self) -> str:
        request = f"request {self.request_id}" if self.request_id else None
        shown = ", ".join(part for part in (self.code, request) if part)
        return f"{self.message} ({shown})" if shown else self.message


class DestinationExists(ClientError):
    """The file a download would write is already there, and overwriting was not asked for."""


@attrs.frozen
class UploadFields:
    """What an upload sends along with the file; None leaves the server's default."""

    title: str | None = None
    description: str | None = None
    tags: Sequence[str] = ()
    metadata: Mapping[str, object] | None = None
    visibility: str | None = None

    def form(self) -> dict[str, str]:
        form: dict[str, str] = {}
        if self.title is not None:
            form["title"] = self.title
        if self.description is not None:
            form["description"] = self.description
        if self.tags:
            # A JSON array: a tag with a comma is refused by the server, not split in two.
            form["tags"] = json.dumps(list(self.tags))
        if self.metadata is not None:
            form["metadata"] = json.dumps(dict(self.metadata))
        if self.visibility is not None:
            form["visibility"] = self.visibility
        return form


@attrs.frozen
class ListFilters:
    """The filters and order of GET /images; None leaves the server's default."""

    user_id: str | None = None
    tags: Sequence[str] = ()
    content_type: str | None = None
    title: str | None = None
    since: str | None = None
    until: str | None = None
    order: str | None = None
    limit: int | None = None

    def params(self) -> dict[str, str]:
        params = {
            "user_id": self.user_id,
            "tags": ",".join(self.tags) if self.tags else None,
            "content_type": self.content_type,
            "title": self.title,
            "start_date": self.since,
            "end_date": self.until,
            "order": self.order,
            "limit": None if self.limit is None else str(self.limit),
        }
        return {name: value for name, value in params.items() if value is not None}


@attrs.frozen
class Page:
    images: list[Resource]
    next_cursor: str | None


class ImagecoreClient:
    """One server, one token. Safe to share between threads (httpx.Client is)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # httpx drops Authorization on a redirect to another origin, so a presigned download
        # URL never sees the token.
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=_TIMEOUT, transport=transport
        )

    def __enter__(self) -> ImagecoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def upload(self, path: Path, fields: UploadFields) -> Resource:
        """POST /images as multipart; the file is read in chunks as it is sent."""
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as file:
            files = {"file": (path.name, file, content_type)}
            response = self._request("POST", "/images", files=files, data=fields.form())
        return _json_object(response)

    def page(self, filters: ListFilters, cursor: str | None = None) -> Page:
        params = filters.params() | ({"cursor": cursor} if cursor else {})
        body = _json_object(self._request("GET", "/images", params=params))
        return Page(images=list(body["images"]), next_cursor=body["next_cursor"])

    def images(self, filters: ListFilters, cursor: str | None = None) -> Iterator[Resource]:
        """Every image the filters match, page after page (from ``cursor``'s page on)."""
        while True:
            page = self.page(filters, cursor)
            yield from page.images
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get(self, image_id: str) -> Resource:
        return _json_object(self._request("GET", f"/images/{_segment(image_id)}"))

    def delete(self, image_id: str) -> None:
        self._request("DELETE", f"/images/{_segment(image_id)}")

    @contextlib.contextmanager
    def download(self, image_id: str) -> Iterator[httpx.Response]:
        """The streamed answer with the bytes, after any redirect to a presigned URL."""
        path = f"/images/{_segment(image_id)}/download"
        with (
            self._translated_errors(),
            self._http.stream("GET", path, follow_redirects=True) as response,
        ):
            if response.is_error:
                response.read()
                raise _error_from(response)
            yield response

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._translated_errors():
            response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise _error_from(response)
        return response

    @contextlib.contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise ClientError(
                f"cannot connect to the imagecore server at {self.base_url} ({exc}): is it "
                "running? Set --url or IMAGECORE_URL to its address"
            ) from None
        except httpx.TimeoutException as exc:
            raise ClientError(
                f"the server at {self.base_url} did not answer in time ({exc})"
            ) from None
        except httpx.TransportError as exc:
            raise ClientError(f"the request to {self.base_url} failed: {exc}") from None


def _segment(image_id: str) -> str:
    return urllib.parse.quote(image_id, safe="")


def _json_object(response: httpx.Response) -> Resource:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ClientError(
            f"the server's answer is not a JSON object (HTTP {response.status_code})",
            status=response.status_code,
        )
    return body


def _error_from(response: httpx.Response) -> ClientError:
    try:
        body = response.json()
    except ValueError:
        body = None
    request_id = response.headers.get("x-request-id")
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return ClientError(
            body["message"],
            status=response.status_code,
            code=str(body.get("error") or f"HTTP {response.status_code}"),
            request_id=str(body.get("request_id") or request_id or "") or None,
        )
    return ClientError(
        response.reason_phrase or "the request failed",
        status=response.status_code,
        code=f"HTTP {response.status_code}",
        request_id=request_id,
    )


def image_files(root: Path) -> list[Path]:
    """The files under ``root`` with an image extension, in a stable order; symlinked folders
    are not followed, so a link loop cannot make the walk endless."""
    found: list[Path] = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        found.extend(
            Path(folder) / name
            for name in sorted(names)
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS
        )
    return found


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*UTF-8''([^;\s]+)", re.IGNORECASE)
_FILENAME_PLAIN = re.compile(r'filename\s*=\s*"([^"]*)"', re.IGNORECASE)


def disposition_filename(header: str | None) -> str | None:
    """The file name a Content-Disposition names: the RFC 5987 UTF-8 one, else the plain one."""
    if not header:
        return None
    if match := _FILENAME_STAR.search(header):
        return urllib.parse.unquote(match.group(1), errors="replace")
    if match := _FILENAME_PLAIN.search(header):
        return match.group(1)
    return None


def safe_filename(name: str | None, fallback: str) -> str:
    """``name`` reduced to one harmless path component: no folders, no control characters, not
    hidden, not too long for a file system; ``fallback`` when nothing is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = base.strip().lstrip(".").strip()
    while len(base.encode()) > _MAX_FILENAME_BYTES:
        stem, dot, suffix = base.rpartition(".")
        base = f"{stem[:-1]}{dot}{suffix}" if dot and len(suffix) < 16 and stem else base[:-1]
    return base or fallback


def fallback_filename(image_id: str, content_type: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return safe_filename(image_id, "image") + _EXTENSIONS.get(kind, "")


def filename_in(folder: Path, response: httpx.Response, image_id: str) -> Path:
    """Where a download goes inside ``folder``: the server's file name, made safe."""
    fallback = fallback_filename(image_id, response.headers.get("content-type"))
    name = safe_filename(
        disposition_filename(response.headers.get("content-disposition")), fallback
    )
    target = folder / name
    if target.parent.resolve() != folder.resolve():  # a second guard: never outside the folder
        raise ClientError(f"refusing the file name {name!r}: it leaves {folder}")
    return target


def save(chunks: Iterator[bytes], target: Path, *, overwrite: bool) -> int:
    """Write ``chunks`` to ``target`` through a temporary file beside it, so that a failed
    download leaves nothing and an existing file is replaced only when ``overwrite`` says so
    (checked atomically: a link fails if the name is taken). The bytes written are returned."""
    if not overwrite and target.exists():
        raise DestinationExists(f"{target} exists: use --force to overwrite it")
    descriptor, scratch = tempfile.mkstemp(prefix=".imagecore-", dir=target.parent)
    scratch_path = Path(scratch)
    try:
        written = 0
        with os.fdopen(descriptor, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
                written += len(chunk)
        if overwrite:
            scratch_path.replace(target)
        else:
            try:
                os.link(scratch_path, target)
            except FileExistsError:
                raise DestinationExists(f"{target} exists: use --force to overwrite it") from None
        return written
    finally:
        scratch_path.unlink(missing_ok=True)
