"""A client of the imagecore HTTP API, for the `imagecore` client commands (`commands`).

It speaks only HTTP (httpx) and knows the API's contract, not the domain: resources stay the
JSON the server sent.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import httpx

from entrypoints.client.bodies import FileForm
from entrypoints.client.retry import RETRIED_STATUSES, RetryPolicy, Throttle, retry_after_seconds

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
        unreachable: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.unreachable = unreachable
        """No connection could be made: the server is down, or --url is wrong."""

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

    def json(self) -> dict[str, object]:
        """The fields as a JSON body takes them (POST /uploads)."""
        body: dict[str, object] = {}
        if self.title is not None:
            body["title"] = self.title
        if self.description is not None:
            body["description"] = self.description
        if self.tags:
            body["tags"] = list(self.tags)
        if self.metadata is not None:
            body["metadata"] = dict(self.metadata)
        if self.visibility is not None:
            body["visibility"] = self.visibility
        return body


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


@attrs.frozen
class Sent:
    """The answer to an upload: the image, and whether this upload made it (False: the caller
    had one with those bytes already)."""

    image: Resource
    created: bool


@attrs.frozen
class TusProgress:
    """Where a resumable upload stands on a tus server: the bytes it holds, and once it holds
    them all, the image they became (its path)."""

    offset: int
    image_location: str | None = None


TUS_HEADERS = {"Tus-Resumable": "1.0.0"}


@attrs.frozen
class UploadSession:
    """A multipart upload session (POST /upload-sessions, on AWS): the file goes to the blob
    store in ``part_count`` parts of ``part_size`` bytes (the last one the rest), ``parts``
    holding the numbers and sizes of those already there."""

    upload_id: str
    size: int
    part_size: int
    part_count: int
    image_url: str
    parts: Mapping[int, int] = attrs.field(factory=dict)
    complete: bool = False

    def part_length(self, number: int) -> int:
        return min(self.part_size, self.size - (number - 1) * self.part_size)


@attrs.frozen
class PartTarget:
    """Where to PUT one part, with the headers that must go with it (its checksum, signed)."""

    number: int
    url: str
    headers: Mapping[str, str]


@attrs.frozen
class Slot:
    """A direct upload slot (POST /uploads): where to post the file, with which fields, and
    where the image appears once its bytes have been checked."""

    upload_id: str
    url: str
    fields: Mapping[str, str]
    image_url: str


class ImagecoreClient:
    """One server, one token. Safe to share between threads (httpx.Client is, and so are the
    throttle and the counters here).

    Every request goes through ``_send``, which tries it again as ``retry`` allows: after a 429
    or 503 once Retry-After has passed (every thread holds off meanwhile), and after a
    connection that failed, with backoff. A request that may have reached the server is sent
    again only when doing so twice is harmless (``repeatable``)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.subject = token_subject(token)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self._throttle = Throttle(clock, sleep)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # httpx drops Authorization on a redirect to another origin, so a presigned download
        # URL never sees the token.
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=_TIMEOUT, transport=transport
        )
        # Upload links (an S3 presigned POST, or the server's own signed link) carry their own
        # credential in their fields: the token is not theirs to see.
        self._bare = httpx.Client(timeout=_TIMEOUT, transport=transport)

    def __enter__(self) -> ImagecoreClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._bare.close()

    # -- uploads -------------------------------------------------------------------------

    def post_image(self, form: FileForm, sha256: str) -> Sent:
        """POST /images with the file's SHA-256 declared: an image of the caller's with those
        bytes is the answer (200, ``created`` False) and the body is not read; otherwise 201
        and the new image. Sent again after a failure, the same bytes never make two images."""
        response = self._send(
            lambda: self._http.build_request(
                "POST",
                "/images",
                content=form,
                headers={**form.headers(), "X-Content-SHA256": sha256},
            ),
            repeatable=True,
        )
        return Sent(_json_object(response), created=response.status_code == 201)

    def create_slot(
        self,
        fields: UploadFields,
        filename: str,
        content_type: str,
        size: int,
        sha256: str | None = None,
    ) -> Slot | Sent:
        """POST /uploads: a slot for a direct upload of ``size`` bytes. With the file's
        ``sha256``, the caller's image with those bytes is the answer instead (200, ``created``
        False), and otherwise the slot takes only those bytes. Asking twice leaves an unused
        slot, which expires: harmless, so it is retried like a read."""
        body: dict[str, object] = {
            **fields.json(),
            "filename": filename,
            "content_type": content_type,
            "size": size,
        }
        if sha256 is not None:
            body["sha256"] = sha256
        response = self._request("POST", "/uploads", json=body)
        answer = _json_object(response)
        if response.status_code == 200:
            return Sent(answer, created=False)
        try:
            return Slot(
                upload_id=str(answer["upload_id"]),
                url=str(answer["url"]),
                fields={str(name): str(value) for name, value in answer["fields"].items()},
                image_url=str(answer.get("image_url") or f"/images/{answer['upload_id']}"),
            )
        except (KeyError, AttributeError, TypeError):
            raise ClientError("the server's upload slot lacks upload_id, url or fields") from None

    def post_to_slot(self, slot: Slot, form: FileForm) -> Sent | None:
        """Send the file to the slot's link, without the token. The embedded server answers
        with the image (201; 200, ``created`` False, when an upload of the same bytes made the
        image first); S3 answers with no image (204), and the image appears once the worker
        has checked the bytes (``wait_for_image``). A link is good for one upload, so the body
        is sent again only when it cannot have arrived."""
        response = self._send(
            lambda: self._bare.build_request(
                "POST", slot.url, content=form, headers=form.headers()
            ),
            repeatable=False,
            via=self._bare,
        )
        try:
            body = response.json()
        except ValueError:
            return None
        if not (isinstance(body, dict) and "image_id" in body):
            return None
        return Sent(body, created=response.status_code == 201)

    def wait_for_image(self, slot: Slot | UploadSession, timeout: float) -> Resource:
        """The image a direct upload (or a completed upload session) becomes, once the server
        has made it (404 until then)."""
        deadline = self._clock() + timeout
        pause = 0.25
        while True:
            try:
                return _json_object(self._request("GET", slot.image_url))
            except ClientError as exc:
                if exc.status != 404:
                    raise
            if self._clock() + pause > deadline:
                raise ClientError(
                    f"the upload {slot.upload_id} arrived, but no image came of it within "
                    f"{timeout:g} s: the server may have refused its bytes, or be slow to "
                    f"check them (look for it later: imagecore get {slot.upload_id})"
                )
            self._sleep(pause)
            pause = min(pause * 2, 5.0)

    # -- resumable uploads (tus) ---------------------------------------------------------

    def speaks_tus(self) -> bool:
        """Whether the server takes resumable uploads by tus 1.0 at /files/ (the embedded
        server does; on AWS the bytes go to S3 instead, and there is no /files/)."""
        response = self._send(
            lambda: self._http.build_request("OPTIONS", "/files/"), repeatable=True, stream=True
        )
        response.close()
        versions = response.headers.get("tus-version", "")
        return response.status_code == 204 and "1.0.0" in versions.split(",")

    def tus_create(
        self, fields: UploadFields, filename: str, size: int, sha256: str, content_type: str | None
    ) -> str:
        """A new resumable upload of ``size`` bytes (POST /files/): its URL. Asking twice
        leaves an unused upload, which expires: harmless, so it is retried like a read."""
        metadata = {**fields.form(), "filename": filename, "sha256": sha256}
        if content_type is not None:
            metadata["filetype"] = content_type
        encoded = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items()
        )
        response = self._request(
            "POST",
            "/files/",
            headers={**TUS_HEADERS, "Upload-Length": str(size), "Upload-Metadata": encoded},
        )
        location = response.headers.get("location")
        if not location:
            raise ClientError("the server's answer to POST /files/ names no upload (Location)")
        return str(urllib.parse.urljoin(f"{self.base_url}/files/", location))

    def tus_progress(self, url: str) -> TusProgress | None:
        """How much of the upload at ``url`` the server holds (HEAD); None if it holds none
        any more (expired, ended, or never this caller's)."""
        try:
            response = self._send(
                lambda: self._http.build_request("HEAD", url, headers=TUS_HEADERS),
                repeatable=True,
            )
        except ClientError as exc:
            if exc.status in (404, 410):
                return None
            raise
        return _tus_progress(response)

    def tus_append(
        self, url: str, offset: int, body: Iterable[bytes], length: int, sha256: bytes
    ) -> TusProgress:
        """PATCH the ``length`` bytes of ``body`` (whose SHA-256 is ``sha256``) at ``offset``.
        Not sent again once it may have arrived: the caller asks ``tus_progress`` where to go
        on from."""
        checksum = base64.b64encode(sha256).decode()
        response = self._send(
            lambda: self._http.build_request(
                "PATCH",
                url,
                content=body,
                headers={
                    **TUS_HEADERS,
                    "Content-Type": "application/offset+octet-stream",
                    "Content-Length": str(length),
                    "Upload-Offset": str(offset),
                    "Upload-Checksum": f"sha256 {checksum}",
                },
            ),
            repeatable=False,
        )
        return _tus_progress(response)

    # -- resumable uploads (multipart sessions, on AWS) ----------------------------------

    def open_session(
        self, fields: UploadFields, filename: str, size: int, sha256: str, content_type: str | None
    ) -> UploadSession | Sent:
        """POST /upload-sessions: a session for a file of ``size`` bytes, or (200) the
        caller's image with those bytes. Asking twice leaves an unused session, which
        expires: harmless, so it is retried like a read."""
        body: dict[str, object] = {
            **fields.json(),
            "filename": filename,
            "size": size,
            "sha256": sha256,
        }
        if content_type is not None:
            body["content_type"] = content_type
        response = self._request("POST", "/upload-sessions", json=body)
        answer = _json_object(response)
        if response.status_code == 200:
            return Sent(answer, created=False)
        return _upload_session(answer)

    def session(self, upload_id: str) -> UploadSession | None:
        """Where the session stands; None if the server holds it no more (404, 410)."""
        try:
            answer = _json_object(self._request("GET", f"/upload-sessions/{_segment(upload_id)}"))
        except ClientError as exc:
            if exc.status in (404, 410):
                return None
            raise
        return _upload_session(answer)

    def part_targets(self, upload_id: str, parts: Mapping[int, str]) -> list[PartTarget]:
        """URLs to PUT the parts numbered in ``parts`` to, each with its SHA-256 (base64)."""
        response = self._request(
            "POST",
            f"/upload-sessions/{_segment(upload_id)}/part-urls",
            json={"parts": [{"number": n, "sha256": digest} for n, digest in parts.items()]},
        )
        try:
            return [
                PartTarget(int(url["number"]), str(url["url"]), dict(url.get("headers") or {}))
                for url in _json_object(response)["urls"]
            ]
        except (KeyError, TypeError, ValueError):
            raise ClientError("the server's part URLs lack number or url") from None

    def put_part(self, target: PartTarget, body: Iterable[bytes], length: int) -> None:
        """PUT one part to the blob store, without the token (the URL carries its own
        credential). Sending a part again replaces it: harmless, so it is retried."""
        self._send(
            lambda: self._bare.build_request(
                "PUT",
                target.url,
                content=body,
                headers={**target.headers, "Content-Length": str(length)},
            ),
            repeatable=True,
            via=self._bare,
        )

    def complete_session(self, upload_id: str) -> str:
        """Ask the server to assemble the parts; the path where the image will appear."""
        response = self._request("POST", f"/upload-sessions/{_segment(upload_id)}/complete")
        return str(_json_object(response).get("image_url") or f"/images/{upload_id}")

    # -- reads, edits, deletes -----------------------------------------------------------

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
        return self.get_with_etag(image_id)[0]

    def get_with_etag(self, image_id: str) -> tuple[Resource, str | None]:
        """The resource and its ETag, the version an edit names in If-Match."""
        response = self._request("GET", f"/images/{_segment(image_id)}")
        return _json_object(response), response.headers.get("etag")

    def update(
        self, image_id: str, changes: Mapping[str, object], if_match: str | None = None
    ) -> Resource:
        """PATCH the fields in ``changes``; with ``if_match``, only if the image is still at
        that version (else ClientError 412). Setting fields to values is harmless twice."""
        headers = {"If-Match": if_match} if if_match else {}
        response = self._request(
            "PATCH", f"/images/{_segment(image_id)}", json=dict(changes), headers=headers
        )
        return _json_object(response)

    def delete(self, image_id: str) -> None:
        self._request("DELETE", f"/images/{_segment(image_id)}")

    @contextlib.contextmanager
    def download(self, image_id: str) -> Iterator[httpx.Response]:
        """The streamed answer with the bytes, after any redirect to a presigned URL."""
        with self._streamed(f"/images/{_segment(image_id)}/download") as response:
            yield response

    @contextlib.contextmanager
    def thumbnail(self, image_id: str) -> Iterator[httpx.Response]:
        """The streamed thumbnail (404 until it is ready), after any redirect."""
        with self._streamed(f"/images/{_segment(image_id)}/thumbnail") as response:
            yield response

    @contextlib.contextmanager
    def _streamed(self, path: str) -> Iterator[httpx.Response]:
        response = self._send(
            lambda: self._http.build_request("GET", path),
            repeatable=True,
            stream=True,
            follow_redirects=True,
        )
        try:
            if response.is_error:
                response.read()
                raise _error_from(response)
            with self._translated_errors(response.request):
                yield response
        finally:
            response.close()

    # -- sending -------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request whose body (if any) is small and may be sent twice."""
        return self._send(lambda: self._http.build_request(method, path, **kwargs), repeatable=True)

    def _send(
        self,
        build: Callable[[], httpx.Request],
        *,
        repeatable: bool,
        stream: bool = False,
        follow_redirects: bool = False,
        via: httpx.Client | None = None,
    ) -> httpx.Response:
        """Send the request ``build`` makes (afresh for each try), ``via`` the API's own client
        unless another is named, until it is answered with
        something other than 429 or 503, or the policy gives up; an error answer raises."""
        policy = self.retry
        waited = 0.0
        busy_tries = connection_tries = 0
        while True:
            waited += self._throttle.wait()
            request = build()
            try:
                response = (via or self._http).send(
                    request, stream=stream, follow_redirects=follow_redirects
                )
            except httpx.TransportError as exc:
                connection_tries += 1
                error = self._transport_error(exc, request, connection_tries)
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                delay = policy.backoff_delay(connection_tries - 1, self._rng)
                if (
                    (not repeatable and not unsent)
                    or connection_tries >= policy.connection_attempts
                    or waited + delay > policy.max_total_wait
                ):
                    raise error from None
                self._sleep(delay)
                waited += delay
                continue
            if response.status_code in RETRIED_STATUSES:
                busy_tries += 1
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
                delay = policy.busy_delay(busy_tries - 1, retry_after, self._rng)
                if (
                    busy_tries < policy.busy_attempts
                    and (retry_after is None or retry_after <= policy.max_retry_after)
                    and waited + delay <= policy.max_total_wait
                ):
                    response.close()
                    self._throttle.hold_off(delay)
                    continue
            if response.is_error and not stream:
                gave_up = response.status_code in RETRIED_STATUSES
                raise _error_from(response, tries=busy_tries if gave_up else 1)
            return response

    def _transport_error(
        self, exc: httpx.TransportError, request: httpx.Request, tries: int
    ) -> ClientError:
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        ours = request.url.netloc == self._http.base_url.netloc
        where = f"the imagecore server at {self.base_url}" if ours else origin
        times = f" ({tries} tries)" if tries > 1 else ""
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            hint = ": is it running? Set --url or IMAGECORE_URL to its address" if ours else ""
            return ClientError(f"cannot connect to {where}{times} ({exc}){hint}", unreachable=True)
        if isinstance(exc, httpx.TimeoutException):
            return ClientError(f"{where} did not answer in time{times} ({exc})")
        return ClientError(f"the request to {where} failed{times}: {exc}")

    @contextlib.contextmanager
    def _translated_errors(self, request: httpx.Request) -> Iterator[None]:
        """Errors while a streamed body is read, as ClientErrors."""
        try:
            yield
        except httpx.TransportError as exc:
            raise self._transport_error(exc, request, 1) from None


def token_subject(token: str | None) -> str | None:
    """The user a bearer token names (its JWT ``sub`` claim), read without checking the
    signature: the server checks it; the client only needs the name (for --mine), and gets
    None from a token that is not a JWT."""
    if not token:
        return None
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) and subject else None


def _upload_session(answer: Resource) -> UploadSession:
    try:
        return UploadSession(
            upload_id=str(answer["upload_id"]),
            size=int(answer["size"]),
            part_size=int(answer["part_size"]),
            part_count=int(answer["part_count"]),
            image_url=str(answer.get("image_url") or f"/images/{answer['upload_id']}"),
            parts={int(part["number"]): int(part["size"]) for part in answer.get("parts") or ()},
            complete=bool(answer.get("complete")),
        )
    except (KeyError, TypeError, ValueError):
        raise ClientError("the server's upload session lacks upload_id, size or parts") from None


def _tus_progress(response: httpx.Response) -> TusProgress:
    offset = response.headers.get("upload-offset", "")
    if not offset.isdigit():
        raise ClientError("the server's tus answer has no Upload-Offset")
    return TusProgress(int(offset), response.headers.get("image-location"))


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


def _error_from(response: httpx.Response, tries: int = 1) -> ClientError:
    """The error an answer stands for; ``tries`` of the request were answered 429 or 503
    before it, when it is one of those."""
    try:
        body = response.json()
    except ValueError:
        body = None
    request_id = response.headers.get("x-request-id")
    gave_up = f"; gave up after {tries} tries" if tries > 1 else ""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return ClientError(
            body["message"] + gave_up,
            status=response.status_code,
            code=str(body.get("error") or f"HTTP {response.status_code}"),
            request_id=str(body.get("request_id") or request_id or "") or None,
        )
    return ClientError(
        (response.reason_phrase or "the request failed") + gave_up,
        status=response.status_code,
        code=f"HTTP {response.status_code}",
        request_id=request_id,
    )
