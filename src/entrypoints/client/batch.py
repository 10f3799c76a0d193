"""Uploading many files: on threads, without sending what the server has already, and stopping
early when going on cannot help (the server is gone, or refuses what every file is sent with).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from pathlib import Path

import attrs

from entrypoints.client.api import ClientError, ImagecoreClient, ListFilters, Resource
from entrypoints.client.progress import ALREADY_THERE, FAILED, NOT_TRIED, UPLOADED, Progress
from entrypoints.client.uploads import Uploaded, Uploader

KNOWN_PAGE = 100
"""Images per page when the caller's images are read to find the files already uploaded."""
ARGUMENT_STATUSES = frozenset({400, 401, 403, 404, 405})
"""Refusals that, repeated for every file, are about what every file is sent with (the
fields, the token, the URL), not about the files."""
SAME_FAILURES_TO_STOP = 3


@attrs.frozen
class Failure:
    path: Path
    error: ClientError


@attrs.frozen
class BatchReport:
    uploaded: list[Uploaded]
    failures: list[Failure]
    not_tried: list[Path]
    stopped_by: ClientError | None = None
    """The error that ended the run early, with ``why``."""
    why: str = ""


def known_images(client: ImagecoreClient, files: int) -> dict[str, Resource]:
    """The caller's newest images by SHA-256, as far as one page per ``KNOWN_PAGE`` files to
    upload reaches (one more request per hundred files), so that running an upload again
    needs no request for the files it sent the first time. The server's own check of each
    file's hash (``X-Content-SHA256``) still stands behind it: the images not read here are
    found there.

    The first page also shows the server is there and takes the token, before any file is
    tried: a ClientError here is the command's one error, not one per file."""
    if client.subject is None:  # a token that names nobody the client can read
        client.page(ListFilters(limit=1))
        return {}
    known: dict[str, Resource] = {}
    cursor = None
    for _ in range(max(1, math.ceil(files / KNOWN_PAGE))):
        page = client.page(ListFilters(user_id=client.subject, limit=KNOWN_PAGE), cursor)
        for image in page.images:
            sha256 = image.get("sha256")
            if isinstance(sha256, str) and image.get("user_id") == client.subject:
                known.setdefault(sha256, image)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return known


def _reason_to_stop(error: ClientError, failures: Sequence[Failure], any_done: bool) -> str:
    """Why ``error`` ends the run (empty when it does not): it would be every file's."""
    if error.unreachable:
        return "the server cannot be reached"
    if error.unauthenticated:
        return "the server refuses the token"
    if any_done or len(failures) < SAME_FAILURES_TO_STOP:
        return ""
    kinds = {(failure.error.status, failure.error.code) for failure in failures}
    if len(kinds) == 1 and error.status in ARGUMENT_STATUSES:
        return (
            f"the first {len(failures)} files all failed alike, so it is what they are sent "
            "with, not the files"
        )
    return ""


class _Verdict:
    """Whether the run goes on, decided in the upload threads as each file ends, so that once
    it must stop no thread starts another file."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.stopped_by: ClientError | None = None
        self.why = ""
        self._failures: list[Failure] = []
        self._any_done = False
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self._any_done = True

    def failed(self, failure: Failure) -> None:
        with self._lock:
            self._failures.append(failure)
            if self.stopped_by is None and (
                why := _reason_to_stop(failure.error, self._failures, self._any_done)
            ):
                self.stopped_by, self.why = failure.error, why
                self.stop.set()


def upload_batch(
    uploader: Uploader,
    files: Sequence[Path],
    sizes: Sequence[int],
    jobs: int,
    progress: Progress,
    on_done: Callable[[Uploaded], None],
    shown: Callable[[ClientError], ClientError] = lambda error: error,
) -> BatchReport:
    """Upload ``files`` on ``jobs`` threads, calling ``on_done`` (in this thread) for each
    file that is on the server, as it lands; errors are shown as ``shown`` puts them."""
    verdict = _Verdict()
    uploaded: list[Uploaded] = []
    failures: list[Failure] = []
    not_tried: list[Path] = []

    def one(path: Path) -> Uploaded | Failure | None:
        if verdict.stop.is_set():
            return None
        try:
            result = uploader.upload(path, progress.sent, progress.resumed, verdict.stop.is_set)
        except ClientError as exc:
            failure = Failure(path, exc)
        except OSError as exc:  # the file went away or cannot be read
            failure = Failure(path, ClientError(f"cannot read it: {exc}"))
        else:
            verdict.done()
            return result
        verdict.failed(failure)
        return failure

    with ThreadPoolExecutor(max_workers=jobs) as pool, _stopped_on_interrupt(verdict.stop):
        pending = {
            pool.submit(one, path): (path, size) for path, size in zip(files, sizes, strict=True)
        }
        for future in as_completed(pending):
            path, size = pending[future]
            result = future.result()
            if result is None:
                not_tried.append(path)
                progress.finished(str(path), size, NOT_TRIED)
            elif isinstance(result, Failure):
                failures.append(result)
                progress.finished(str(path), size, FAILED, describe(shown(result.error)))
            else:
                uploaded.append(result)
                outcome = UPLOADED if result.created else ALREADY_THERE
                progress.finished(str(path), size, outcome, stdout_line=partial(on_done, result))
    return BatchReport(uploaded, failures, not_tried, verdict.stopped_by, verdict.why)


@contextlib.contextmanager
def _stopped_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """On Ctrl-C, the files not started yet are not started, and resumable uploads stop after
    the piece on its way: the pool's exit waits only for those and for the files sent whole."""
    try:
        yield
    except BaseException:
        stop.set()
        raise


def describe(error: ClientError) -> str:
    status = f"{error.status} " if error.status else ""
    return f"{status}{error}"
