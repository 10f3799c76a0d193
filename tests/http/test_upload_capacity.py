"""The upload capacity's rule (at most ``total`` uploads under way, ``per_caller`` of one
caller's), over each store of places: this process's memory, and the file a server's workers
share, where two capacities on one file are two workers, and a worker that dies with uploads
under way does not keep their places."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.shared_file import Leases
from adapters.upload_places import InProcessPlaces, SharedPlaces, prepare_shared_places
from entrypoints.http.capacity import ServiceUnavailable, UploadCapacity
from entrypoints.http.rate_limit import TooManyRequests

TOTAL, PER_CALLER = 4, 2
Capacities = Callable[[], UploadCapacity]


@pytest.fixture(params=["in-process", "shared"])
def capacities(request: pytest.FixtureRequest, tmp_path: Path) -> Capacities:
    if request.param == "in-process":
        return lambda: UploadCapacity(TOTAL, PER_CALLER, InProcessPlaces())
    prepare_shared_places(tmp_path / "uploads", TOTAL)

    def worker() -> UploadCapacity:
        places = SharedPlaces(tmp_path / "uploads", TOTAL, Leases(tmp_path / "leases"))
        return UploadCapacity(TOTAL, PER_CALLER, places)

    return worker


def test_a_caller_gets_per_caller_places_and_the_server_total(capacities: Capacities) -> None:
    capacity = capacities()
    with contextlib.ExitStack() as held:
        for _ in range(PER_CALLER):
            held.enter_context(capacity.place("alice"))
        with pytest.raises(TooManyRequests), capacity.place("alice"):
            pass
        for _ in range(TOTAL - PER_CALLER):
            held.enter_context(capacity.place("bob"))
        with pytest.raises(ServiceUnavailable), capacity.place("carol"):
            pass
    with contextlib.ExitStack() as held:
        for _ in range(TOTAL // PER_CALLER):
            for caller in ("alice", "bob"):
                held.enter_context(capacity.place(caller))


def test_a_place_is_given_back_when_its_upload_fails(capacities: Capacities) -> None:
    capacity = capacities()
    for _ in range(TOTAL * 2):
        with pytest.raises(OSError), capacity.place("alice"):
            raise OSError("the client went away")
    with capacity.place("alice"), capacity.place("alice"):
        pass


def test_workers_sharing_the_places_share_both_limits(tmp_path: Path) -> None:
    prepare_shared_places(tmp_path / "uploads", TOTAL)
    first, second = (
        UploadCapacity(
            TOTAL, PER_CALLER, SharedPlaces(tmp_path / "uploads", TOTAL, Leases(tmp_path / "l"))
        )
        for _ in range(2)
    )
    with first.place("alice"), second.place("alice"):
        for worker in (first, second):
            with pytest.raises(TooManyRequests), worker.place("alice"):
                pass
        with first.place("bob"), second.place("carol"):
            for worker in (first, second):
                with pytest.raises(ServiceUnavailable), worker.place("dave"):
                    pass


HOLDING_WORKER = """
import sys, time
from pathlib import Path
from adapters.shared_file import Leases
from adapters.upload_places import SharedPlaces
from entrypoints.http.capacity import UploadCapacity

directory = Path(sys.argv[1])
places = SharedPlaces(directory / "uploads", 4, Leases(directory / "leases"))
capacity = UploadCapacity(4, 4, places)
held = [capacity.place(f"user-{n}") for n in range(3)]
for place in held:
    place.__enter__()
print("holding", flush=True)
time.sleep(60)
"""


@pytest.fixture
def worker_holding_three_places(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    prepare_shared_places(tmp_path / "uploads", TOTAL)
    worker = subprocess.Popen(
        [sys.executable, "-c", HOLDING_WORKER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "holding\n"
        yield worker
    finally:
        worker.kill()
        worker.wait()


def test_the_places_of_a_worker_that_died_are_freed_when_needed(
    tmp_path: Path, worker_holding_three_places: subprocess.Popen[str]
) -> None:
    places = SharedPlaces(tmp_path / "uploads", TOTAL, Leases(tmp_path / "leases"))
    capacity = UploadCapacity(TOTAL, TOTAL, places)
    with capacity.place("alice"):
        with pytest.raises(ServiceUnavailable), capacity.place("bob"):
            pass  # the other worker lives: its three places are taken
        worker_holding_three_places.send_signal(signal.SIGKILL)
        worker_holding_three_places.wait()

        with capacity.place("bob"), capacity.place("carol"), capacity.place("dave"):
            pass
    assert list((tmp_path / "leases").iterdir()) == [
        tmp_path / "leases" / f"{places_lease(places)}"
    ]


def places_lease(places: SharedPlaces) -> str:
    return f"{places._leases.mine:016x}"
