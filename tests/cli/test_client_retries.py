"""The client's HTTP behaviour without a server: tries again after 429 and 503 as Retry-After
says, and after lost connections, within bounds; direct uploads on S3's terms; bytes counted
for the progress display. The server is an httpx.MockTransport, the clock a fake one."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from entrypoints.cli import main
from entrypoints.client import commands
from entrypoints.client.api import ClientError, ImagecoreClient, Slot, UploadFields
from entrypoints.client.bodies import FileForm
from entrypoints.client.progress import ALREADY_THERE, UPLOADED, Progress
from entrypoints.client.retry import RetryPolicy, Throttle
from entrypoints.client.uploads import LocalFile, Uploader
from tests.support.sample_images import image_bytes, large_png

IMAGE = {"image_id": "01IMAGE", "user_id": "alice", "sha256": "x", "tags": []}


class FakeTime:
    """A clock that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_of(
    serve: Callable[[httpx.Request], httpx.Response],
    time: FakeTime,
    retry: RetryPolicy | None = None,
    token: str = "secret",
) -> ImagecoreClient:
    return ImagecoreClient(
        "http://api.test",
        token,
        transport=httpx.MockTransport(serve),
        retry=retry,
        sleep=time.sleep,
        clock=time.clock,
        rng=random.Random(7),
    )


def answers(*responses: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """A server that gives these answers in turn, then the last one for ever."""
    given = list(responses)

    def serve(request: httpx.Request) -> httpx.Response:
        answer = given.pop(0) if len(given) > 1 else given[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return serve


def busy(status: int = 429, retry_after: str | None = "2") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": "TooManyRequests", "message": "too many requests", "request_id": "r1"}
    return httpx.Response(status, json=body, headers=headers)


def ok(body: object = IMAGE, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_answer_is_tried_again_once_retry_after_has_passed(status: int) -> None:
    time = FakeTime()
    client = client_of(answers(busy(status), busy(status), ok()), time)

    assert client.get("01IMAGE") == IMAGE

    assert len(time.sleeps) == 2
    # Retry-After's 2 s, and at most a fifth more of jitter, never less.
    assert all(2.0 <= slept <= 2.4 for slept in time.sleeps)


def test_busy_answers_are_tried_a_bounded_number_of_times() -> None:
    time = FakeTime()
    seen: list[httpx.Request] = []

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return busy(retry_after="1")

    client = client_of(serve, time, RetryPolicy(busy_attempts=4))

    with pytest.raises(ClientError) as raised:
        client.get("01IMAGE")

    assert len(seen) == 4
    assert raised.value.status == 429
    assert "gave up after 4 tries" in str(raised.value)


def test_busy_answers_wait_a_bounded_time_in_all() -> None:
    time = FakeTime()
    client = client_of(answers(busy(retry_after="10")), time, RetryPolicy(max_total_wait=25))

    with pytest.raises(ClientError):
        client.get("01IMAGE")

    assert sum(time.sleeps) <= 25
    assert len(time.sleeps) == 2  # a third wait of 10 s or more would pass 25 s


def test_a_retry_after_beyond_the_limit_is_not_waited_for() -> None:
    time = FakeTime()
    client = client_of(answers(busy(retry_after="3600"), ok()), time)

    with pytest.raises(ClientError) as raised:
        client.get("01IMAGE")

    assert raised.value.status == 429
    assert time.sleeps == []


def test_without_retry_after_the_waits_back_off() -> None:
    time = FakeTime()
    policy = RetryPolicy(backoff=1.0, max_backoff=100.0)
    client = client_of(answers(*[busy(retry_after=None)] * 4, ok()), time, policy)

    client.get("01IMAGE")

    # 1, 2, 4, 8 s ceilings with jitter: each wait longer than half its ceiling.
    assert len(time.sleeps) == 4
    assert all(slept >= 2**index / 2 for index, slept in enumerate(time.sleeps))
    assert time.sleeps[3] > time.sleeps[0]


def test_one_threads_busy_answer_holds_off_every_thread() -> None:
    time = FakeTime()
    throttle = Throttle(time.clock, time.sleep)
    throttle.hold_off(3.0)
    assert throttle.wait() == pytest.approx(3.0)
    assert throttle.wait() == 0.0


def test_lost_connections_are_tried_again_with_backoff_then_named_unreachable() -> None:
    time = FakeTime()
    refused = httpx.ConnectError("connection refused")
    client = client_of(answers(refused, refused, ok()), time)
    assert client.get("01IMAGE") == IMAGE
    assert len(time.sleeps) == 2

    down = client_of(answers(refused), time, RetryPolicy(connection_attempts=3))
    with pytest.raises(ClientError) as raised:
        down.get("01IMAGE")
    assert raised.value.unreachable
    assert "cannot connect to the imagecore server at http://api.test (3 tries)" in str(
        raised.value
    )


def test_a_body_that_may_have_arrived_is_not_sent_again_unless_that_is_harmless(
    tmp_path: Path,
) -> None:
    """A read error after the request went out: an upload by hash may go again (the server
    keeps one image per hash); a post to a single-use upload link may not."""
    time = FakeTime()
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes())
    cut = httpx.ReadError("connection reset")
    calls: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise cut
        return ok(status=201)

    client = client_of(serve, time)
    file = LocalFile.read(path)
    assert client.post_image(file.form({}, None), file.sha256).created
    assert calls == ["/images", "/images"]

    calls.clear()
    link = client_of(serve, time)
    slot = Slot("01SLOT", "http://blobs.test/upload", {}, "/images/01SLOT")
    with pytest.raises(ClientError):
        link.post_to_slot(slot, file.form({}, None))
    assert calls == ["/upload"]


def test_a_retried_upload_counts_its_bytes_once(tmp_path: Path) -> None:
    time = FakeTime()
    path = tmp_path / "big.png"
    path.write_bytes(large_png(600 * 1024))
    counted: list[int] = []
    tries = 0

    def serve(request: httpx.Request) -> httpx.Response:
        nonlocal tries
        tries += 1
        request.read()  # the whole body goes out, and is counted, each time
        return busy(retry_after="1") if tries == 1 else ok(status=201)

    # The first try is answered 429 after its body was sent; the second one lands.
    client = client_of(serve, time)
    file = LocalFile.read(path)
    form = file.form({"title": "big"}, counted.append)
    client.post_image(form, file.sha256)

    assert tries == 2
    assert sum(counted) == file.size
    assert any(amount < 0 for amount in counted)  # the first try's bytes, taken back


def test_the_upload_body_is_multipart_with_the_fields_first_and_a_known_length(
    tmp_path: Path,
) -> None:
    path = tmp_path / 'na"me.png'
    data = image_bytes()
    path.write_bytes(data)
    form = FileForm({"title": "T", "tags": '["a"]'}, path, len(data), path.name, "image/png")

    body = b"".join(form)

    assert len(body) == form.length
    assert body.index(b'name="title"') < body.index(b'name="tags"') < body.index(b'name="file"')
    assert b'filename="na%22me.png"' in body
    assert data in body
    # httpx's own parser of forms reads it back.
    request = httpx.Request("POST", "http://x/", content=body, headers=form.headers())
    assert request.headers["content-length"] == str(len(body))


def test_a_direct_upload_to_s3_waits_for_the_image_and_never_sends_the_token(
    tmp_path: Path,
) -> None:
    """S3 answers a presigned POST with 204 and no image: the worker makes it later, so the
    client asks for it (404 until then). The slot's URL gets its fields, not the token."""
    time = FakeTime()
    path = tmp_path / "big.png"
    data = image_bytes(width=40)
    path.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    seen: list[httpx.Request] = []
    polls = 0

    def serve(request: httpx.Request) -> httpx.Response:
        nonlocal polls
        seen.append(request)
        request.read()
        if request.url.host == "bucket.test":
            return httpx.Response(204)
        assert request.url.path != "/images" or request.method != "POST", "no probe by POST"
        if request.url.path == "/uploads":
            assert json.loads(request.content) == {
                "title": "Big",
                "filename": "big.png",
                "content_type": "image/png",
                "size": len(data),
                "sha256": sha256,
            }
            slot = {
                "upload_id": "01SLOT",
                "url": "https://bucket.test/",
                "fields": {"key": "uploads/alice/01SLOT", "policy": "p", "x-amz-signature": "s"},
                "image_url": "/images/01SLOT",
            }
            return ok(slot, 201)
        polls += 1
        if polls < 3:
            return httpx.Response(404, json={"error": "NotFound", "message": "no such image"})
        return ok({**IMAGE, "image_id": "01SLOT"})

    client = client_of(serve, time)
    uploader = Uploader(client, UploadFields(title="Big"), direct_above=10)
    counted: list[int] = []

    uploaded = uploader.upload(path, counted.append)

    assert uploaded.created
    assert uploaded.image["image_id"] == "01SLOT"
    assert sum(counted) == len(data)
    posted = next(request for request in seen if request.url.host == "bucket.test")
    assert "authorization" not in posted.headers
    body = posted.content
    # Every field of the slot, the Content-Type S3's policy asks for, then the file last.
    for field in (b'name="key"', b'name="policy"', b'name="Content-Type"'):
        assert body.index(field) < body.index(b'name="file"')
    assert all(r.headers["authorization"] == "Bearer secret" for r in seen if r is not posted)
    assert polls == 3
    assert len(time.sleeps) == 2


def test_a_file_too_large_for_post_images_goes_direct_and_so_do_the_next(tmp_path: Path) -> None:
    time = FakeTime()
    routes: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        request.read()
        route = f"{request.method} {request.url.path}"
        routes.append(route)
        if route == "POST /images":
            return httpx.Response(413, json={"error": "PayloadTooLarge", "message": "too big"})
        if route == "POST /uploads":
            slot = {"upload_id": "01S", "url": "http://api.test/uploads/01S", "fields": {}}
            return ok(slot, 201)
        return ok({**IMAGE, "image_id": "01S"}, 201)

    client = client_of(serve, time)
    uploader = Uploader(client, UploadFields())
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(image_bytes(width=30))
    second.write_bytes(image_bytes(width=31))

    uploader.upload(first)
    uploader.upload(second)

    direct = ["POST /uploads", "POST /uploads/01S"]  # the slot (with the hash), the file
    assert routes == ["POST /images", *direct, *direct]
    assert uploader.direct_above < first.stat().st_size


def test_a_big_file_the_server_has_is_answered_by_the_slot_request_and_not_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(large_png(64 * 1024))
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    routes: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        request.read()
        routes.append(f"{request.method} {request.url.path}")
        assert json.loads(request.content)["sha256"] == sha256
        return ok({**IMAGE, "image_id": "01HAD", "sha256": sha256}, 200)

    counted: list[int] = []
    uploaded = Uploader(client_of(serve, FakeTime()), UploadFields(), direct_above=10).upload(
        path, counted.append
    )

    assert not uploaded.created, "counted as already there"
    assert uploaded.image["image_id"] == "01HAD"
    assert routes == ["POST /uploads"]
    assert sum(counted) == 0


def test_a_slot_filled_with_bytes_another_upload_made_first_is_already_there(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(large_png(64 * 1024))

    def serve(request: httpx.Request) -> httpx.Response:
        request.read()
        if request.url.path == "/uploads":
            slot = {"upload_id": "01S", "url": "http://api.test/uploads/01S", "fields": {}}
            return ok(slot, 201)
        return ok({**IMAGE, "image_id": "01FIRST"}, 200)

    uploaded = Uploader(client_of(serve, FakeTime()), UploadFields(), direct_above=10).upload(path)

    assert not uploaded.created
    assert uploaded.image["image_id"] == "01FIRST"


def test_the_terminal_status_line_moves_during_one_big_file(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(large_png(1024 * 1024))
    size = path.stat().st_size
    screen = io.StringIO()
    progress = Progress(1, size, screen, live=True, redraw_interval=0)
    drawn_during: list[str] = []

    def sent(amount: int) -> None:  # as the body is read by the transport, piece by piece
        progress.sent(amount)
        drawn_during.append(screen.getvalue().rsplit("\r\x1b[K", 1)[-1])

    client = client_of(lambda request: ok(status=201), FakeTime())
    uploaded = Uploader(client, UploadFields()).upload(path, sent)
    progress.finished(str(path), size, UPLOADED)

    statuses = [line for line in dict.fromkeys(drawn_during) if line]
    assert len(statuses) >= 4  # redrawn as the pieces went out, not only at the end
    assert all(status.startswith("0/1 files") for status in statuses)
    assert "/s  ETA " in statuses[-1]
    assert uploaded.created
    assert screen.getvalue().rsplit("\r\x1b[K", 1)[-1].startswith("1/1 files  ")


def test_plain_progress_is_a_line_per_file_and_a_summary() -> None:
    lines = io.StringIO()
    progress = Progress(3, 3000, lines, live=False)
    progress.sent(1000)
    progress.finished("a.png", 1000, UPLOADED)
    progress.finished("b.png", 1000, ALREADY_THERE)
    progress.finished("c.png", 1000, "failed", "415 not an image")

    assert lines.getvalue().splitlines() == [
        "[1/3] uploaded  a.png  (1000 B)",
        "[2/3] already there  b.png",
        "[3/3] failed  c.png: 415 not an image",
    ]
    assert progress.summary().startswith(
        "1 uploaded, 1 already there, 1 failed of 3 files; 1000 B sent in "
    )


def test_edit_sends_the_etag_it_read_and_gives_up_on_a_conflict_that_persists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patches: list[httpx.Request] = []
    version = 0

    def serve(request: httpx.Request) -> httpx.Response:
        nonlocal version
        if request.method == "GET":
            version += 1  # someone else edits it between each read and write
            return httpx.Response(
                200, json={**IMAGE, "tags": ["beach"]}, headers={"ETag": f'"v{version}"'}
            )
        patches.append(request)
        body = {"error": "PreconditionFailed", "message": "stale", "request_id": "r"}
        return httpx.Response(412, json=body)

    monkeypatch.setattr(commands, "_client", lambda url, token: client_of(serve, FakeTime()))
    result = CliRunner().invoke(main, ["edit", "01IMAGE", "--add-tag", "sunset", "--token", "t"])

    assert result.exit_code == 1
    assert [request.headers["if-match"] for request in patches] == ['"v1"', '"v2"', '"v3"']
    assert json.loads(patches[0].content) == {"tags": ["beach", "sunset"]}
    assert "changed each time between reading and writing it (3 tries)" in result.stderr
    assert "nothing was changed" in result.stderr
