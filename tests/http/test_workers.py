"""A server of several worker processes answers as one: each user has one request budget
whichever worker takes the request, the uploads under way are counted for the server as a
whole, a token, a cursor or an upload link one worker made is good in every other, and what
one worker writes every other reads at once. Each request here is made on a connection of its
own, which the kernel hands to either worker; the server's access log says which worker
answered each (its line carries the response's request id and the worker's process id), and
each test checks that both did."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.http.test_slow_bodies import stalled, upload_head
from tests.support.http_server import ServerProcess, log_lines
from tests.support.sample_images import image_bytes

WORKERS = 2


@pytest.fixture
def limited_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("workers") / "data",
        workers=WORKERS,
        IMAGECORE_RATE_LIMIT_BURST="10",
        IMAGECORE_RATE_LIMIT_PER_SECOND="1",
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("workers") / "data", workers=WORKERS).start()
    try:
        yield server
    finally:
        server.stop()


def answering_workers(server: ServerProcess, responses: list[httpx.Response]) -> set[int]:
    """The process ids of the workers that answered ``responses``, from the access log (whose
    line is written once the response is sent, so it may come a moment later)."""
    wanted = {response.headers["x-request-id"] for response in responses}
    deadline = time.monotonic() + 10
    while True:
        workers = {
            line["request_id"]: line["process"]
            for line in log_lines(server)
            if line.get("logger") == "imagecore.access" and line.get("request_id") in wanted
        }
        if len(workers) == len(wanted) or time.monotonic() > deadline:
            assert len(workers) == len(wanted), "every request has its access line"
            return set(workers.values())
        time.sleep(0.05)


def test_a_users_rate_limit_is_one_budget_across_all_workers(
    limited_pair: ServerProcess,
) -> None:
    headers = {"Authorization": f"Bearer {limited_pair.token('alice')}"}
    began = time.monotonic()
    answers = [httpx.get(f"{limited_pair.url}/images", headers=headers) for _ in range(40)]
    refill = math.ceil((time.monotonic() - began) * 1)  # at 1 token a second

    assert len(answering_workers(limited_pair, answers)) == WORKERS
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {200, 429}
    assert 10 <= statuses.count(200) <= 10 + refill, "the burst of 10, once, plus the refill"
    assert statuses[:10] == [200] * 10
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 429)


def test_tokens_cursors_and_upload_links_made_in_one_worker_hold_in_every_worker(
    pair: ServerProcess,
) -> None:
    headers = {"Authorization": f"Bearer {pair.token('alice')}"}
    for n in range(3):
        created = httpx.post(
            f"{pair.url}/images", headers=headers, files={"file": (f"{n}.png", image_bytes())}
        )
        assert created.status_code == 201, created.text
    first_page = httpx.get(f"{pair.url}/images", headers=headers, params={"limit": 1}).json()
    cursor = first_page["next_cursor"]
    links = []
    for _ in range(16):
        slot = httpx.post(
            f"{pair.url}/uploads", headers=headers, json={"content_type": "image/png"}
        )
        assert slot.status_code == 201, slot.text
        links.append(slot.json())

    pages = [
        httpx.get(f"{pair.url}/images", headers=headers, params={"limit": 1, "cursor": cursor})
        for _ in range(16)
    ]
    posts = [
        httpx.post(
            link["url"],
            data=link["fields"],
            files={"file": ("big.png", image_bytes(), "image/png")},
        )
        for link in links
    ]

    assert [page.status_code for page in pages] == [200] * len(pages), pages[0].text
    # The image ids only: a thumbnail settling meanwhile moves an image's version on.
    second_page = {tuple(i["image_id"] for i in page.json()["images"]) for page in pages}
    assert len(second_page) == 1
    [[image_id]] = second_page
    assert image_id != first_page["images"][0]["image_id"]
    assert len(answering_workers(pair, pages)) == WORKERS, "the cursor holds in every worker"
    assert [post.status_code for post in posts] == [201] * len(posts), posts[0].text
    assert len(answering_workers(pair, posts)) == WORKERS, "links hold in every worker"


def test_an_edit_made_in_one_worker_is_what_every_worker_answers_next(pair: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {pair.token('alice')}"}
    created = httpx.post(f"{pair.url}/images", headers=headers, files={"file": image_bytes()})
    assert created.status_code == 201, created.text
    url = f"{pair.url}/images/{created.json()['image_id']}"
    # Both workers read it, more than once: each keeps it while nothing is written.
    before = [httpx.get(url, headers=headers) for _ in range(16)]
    assert len(answering_workers(pair, before)) == WORKERS

    for title in ("first edit", "second edit"):
        edited = httpx.patch(url, headers=headers, json={"title": title})
        assert edited.status_code == 200, edited.text
        after = [httpx.get(url, headers=headers) for _ in range(16)]

        assert [answer.json()["title"] for answer in after] == [title] * len(after)
        assert len(answering_workers(pair, after)) == WORKERS


@pytest.fixture
def small_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(
        tmp_path_factory.mktemp("workers") / "data",
        workers=WORKERS,
        IMAGECORE_MAX_UPLOADS="3",
        IMAGECORE_MAX_UPLOADS_PER_USER="2",
    ).start()
    try:
        yield server
    finally:
        server.stop()


def test_uploads_under_way_are_counted_for_the_server_as_a_whole(small_pair: ServerProcess) -> None:
    tokens = {user: small_pair.token(user) for user in ("alice", "bob", "carol")}

    def upload(user: str) -> httpx.Response:
        return httpx.post(
            f"{small_pair.url}/images",
            headers={"Authorization": f"Bearer {tokens[user]}"},
            files={"file": ("a.png", image_bytes())},
        )

    with stalled(small_pair.port, [upload_head(tokens["alice"]) for _ in range(2)]):
        alices = [upload("alice") for _ in range(8)]
        with stalled(small_pair.port, [upload_head(tokens["bob"])]):
            carols = [upload("carol") for _ in range(8)]

    assert [answer.status_code for answer in alices] == [429] * 8, "2 of alice's under way"
    assert [answer.status_code for answer in carols] == [503] * 8, "3 in all under way"
    assert len(answering_workers(small_pair, alices + carols)) == WORKERS
    deadline = time.monotonic() + 10  # the stalled clients went away: their places come back
    while (answer := upload("carol")).status_code != 201 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert answer.status_code == 201, answer.text
