"""Reading request bodies on the event loop, where a client that sends slowly costs no thread:
bounded in size, and in time by an idle timeout and by a minimum rate over the whole body."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import attrs
from starlette.requests import Request
from starlette.types import Message, Receive

from entrypoints.http.client_json import decode_json
from entrypoints.http.header_numbers import exceeds
from imagecore.errors import ImageCoreError, InvalidInput, PayloadTooLarge, UnsupportedMediaType

FORM_ENVELOPE_BYTES = 256 * 1024
"""What a multipart body may carry beyond the file itself: boundaries, headers, text fields."""
MAX_JSON_BODY_BYTES = 64 * 1024
PIECE_BYTES = 1024 * 1024
"""What is gathered from the client before it is handed to a worker thread: big enough that a
50 MiB upload takes few hops between threads, small enough to bound an upload's memory."""


class RequestTimeout(ImageCoreError):
    """The client stopped sending the body it announced, or sent it too slowly."""

    code = "RequestTimeout"


@attrs.frozen
class BodyPace:
    """How slowly a client may send a body. It may pause for at most ``idle_timeout`` seconds,
    and must have sent, at every moment, ``min_rate`` bytes a second on average over the time
    since its body began, less ``idle_timeout`` seconds of grace: a body trickled a byte at a
    time is cut off however short its pauses."""

    idle_timeout: float
    min_rate: float


def refuse_declared_excess(request: Request, max_bytes: int) -> None:
    """PayloadTooLarge at once when the Content-Length announces a file above ``max_bytes``."""
    if exceeds(request.headers.get("content-length", ""), max_bytes + FORM_ENVELOPE_BYTES):
        raise PayloadTooLarge(f"the upload is larger than the limit of {max_bytes} bytes")


class IncomingBody:
    """The body of one request as it arrives, received on the event loop. Raises
    RequestTimeout when the client breaks its ``pace``, and when the body ends before
    it is whole (InvalidInput: the client went away, or its chunked framing was malformed)."""

    def __init__(
        self, receive: Receive, pace: BodyPace, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._receive = receive
        self._pace = pace
        self._clock = clock
        self._began = clock()
        self.received = 0
        self.ended = False

    async def next(self) -> bytes | None:
        """The next piece the client sent, as it came; None once the body has ended."""
        while not self.ended:
            message = await self._next_message()
            if message["type"] == "http.disconnect":
                raise InvalidInput(
                    "the body ended before it was whole: the connection closed, or its chunked "
                    "framing is malformed"
                )
            self.ended = not message.get("more_body", False)
            if body := message.get("body", b""):
                self.received += len(body)
                return bytes(body)
        return None

    async def piece(self, size: int = PIECE_BYTES) -> list[bytes] | None:
        """At least ``size`` bytes of the body, or what is left of it, in the parts they came
        in (joining them would copy every byte once more, on the event loop); None once the
        body has ended."""
        parts: list[bytes] = []
        gathered = 0
        while gathered < size and (part := await self.next()) is not None:
            parts.append(part)
            gathered += len(part)
        return parts or None

    async def read(self, limit: int, too_large: str) -> bytes:
        """The whole body, of at most ``limit`` bytes: PayloadTooLarge(too_large) past it."""
        parts: list[bytes] = []
        while (part := await self.next()) is not None:
            parts.append(part)
            if self.received > limit:
                raise PayloadTooLarge(too_large)
        return b"".join(parts)

    async def _next_message(self) -> Message:
        idle = self._pace.idle_timeout
        allowed = self._began + idle + self.received / self._pace.min_rate - self._clock()
        wait = min(idle, allowed)
        if wait <= 0:
            raise self._too_slow()
        try:
            with anyio.fail_after(wait):
                return await self._receive()
        except TimeoutError:
            if wait < idle:
                raise self._too_slow() from None
            raise RequestTimeout(f"the client sent nothing for {idle:g} s") from None

    def _too_slow(self) -> RequestTimeout:
        return RequestTimeout(
            f"the body arrived slower than {self._pace.min_rate:g} bytes a second: "
            "send it faster, or in smaller uploads"
        )


async def json_body(request: Request, pace: BodyPace) -> object:
    """The body parsed as JSON, of at most MAX_JSON_BODY_BYTES with a JSON media type."""
    content_type = request.headers.get("content-type", "application/json")
    if not content_type.split(";")[0].strip().endswith(("/json", "+json")):
        raise UnsupportedMediaType("send the changes as a JSON object (application/json)")
    too_large = f"the JSON body is larger than {MAX_JSON_BODY_BYTES} bytes"
    if exceeds(request.headers.get("content-length", ""), MAX_JSON_BODY_BYTES):
        raise PayloadTooLarge(too_large)
    body = await IncomingBody(request.receive, pace).read(MAX_JSON_BODY_BYTES, too_large)
    return decode_json(body, "the body")
