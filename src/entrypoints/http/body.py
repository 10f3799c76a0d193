"""Reading request bodies: bounded in size, and in how long a client may pause while sending."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import anyio.from_thread
import anyio.lowlevel
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive

from imagecore.errors import ImageCoreError, InvalidInput, PayloadTooLarge, UnsupportedMediaType

FORM_ENVELOPE_BYTES = 256 * 1024
"""What a multipart body may carry beyond the file itself: boundaries, headers, text fields."""
MAX_JSON_BODY_BYTES = 64 * 1024


class RequestTimeout(ImageCoreError):
    """The client stopped sending the body it announced."""

    code = "RequestTimeout"


def refuse_declared_excess(request: Request, max_bytes: int) -> None:
    """PayloadTooLarge at once when the Content-Length announces a file above ``max_bytes``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + FORM_ENVELOPE_BYTES:
        raise PayloadTooLarge(f"the upload is larger than the limit of {max_bytes} bytes")


def bounded(request: Request, limit: int, message: str, idle_timeout: float) -> Request:
    """The request with a body that ends in PayloadTooLarge(message) past ``limit`` bytes: at once
    when its Content-Length says so, else as soon as the bytes arriving cross the limit; and in
    RequestTimeout if the client stops sending for ``idle_timeout`` seconds."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(message)
    received = 0

    async def receive() -> Message:
        nonlocal received
        event = await receive_within(request.receive, idle_timeout)
        if event["type"] == "http.request":
            received += len(event.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(message)
        return event

    return Request(request.scope, receive)


async def receive_within(receive: Receive, idle_timeout: float) -> Message:
    """The next piece of the body, or RequestTimeout when the client sends nothing for
    ``idle_timeout`` seconds: a client that trickles a body must not hold a worker forever."""
    try:
        with anyio.fail_after(idle_timeout):
            return await receive()
    except TimeoutError:
        raise RequestTimeout(f"the client sent nothing for {idle_timeout:g} s") from None


async def json_body(request: Request, idle_timeout: float) -> object:
    """The body parsed as JSON, of at most MAX_JSON_BODY_BYTES with a JSON media type."""
    content_type = request.headers.get("content-type", "application/json")
    if not content_type.split(";")[0].strip().endswith(("/json", "+json")):
        raise UnsupportedMediaType("send the changes as a JSON object (application/json)")
    too_large = f"the JSON body is larger than {MAX_JSON_BODY_BYTES} bytes"
    limited = bounded(request, MAX_JSON_BODY_BYTES, too_large, idle_timeout)
    try:
        body = await limited.body()
        return json.loads(body)
    except ClientDisconnect:
        raise InvalidInput("the client went away") from None
    except ValueError:
        raise InvalidInput("the body is not valid JSON") from None


class BodyReader:
    """The request body as a blocking read of the next chunk, for a worker thread: each read
    waits on the event loop for what the client sends next, so nothing is buffered here.
    Raises ClientDisconnect if the client goes away before the end, RequestTimeout if it stops
    sending for ``idle_timeout`` seconds."""

    def __init__(self, receive: Receive, idle_timeout: float) -> None:
        self._receive = receive
        self._idle_timeout = idle_timeout
        self._ended = False
        # Made on the event loop: the blob store may read from a thread of its own (S3's
        # transfer threads), which anyio knows nothing of without the loop's token.
        self._loop = anyio.lowlevel.current_token()

    async def _next(self) -> Message:
        return await receive_within(self._receive, self._idle_timeout)

    def __call__(self) -> bytes | None:
        while not self._ended:
            message = anyio.from_thread.run(self._next, token=self._loop)
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self._ended = not message.get("more_body", False)
            if body := message.get("body", b""):
                return bytes(body)
        return None

    def chunks(self) -> Iterator[bytes]:
        while (chunk := self()) is not None:
            yield chunk
