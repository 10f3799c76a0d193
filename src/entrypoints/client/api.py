"""A client of the imagecore HTTP API, for the `imagecore` client commands (`commands`).

It speaks only HTTP (httpx) and knows the API's contract, not the domain: resources stay the
JSON the server sent.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)

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
