"""Image metadata in one SQLite file (WAL mode), with indexes that serve every list.

A list is the union of at most two keyset-paginated branches, each read in order from an index:
the caller's own private images, and public images (everyone's, or one user's). The two never
overlap, so UNION ALL needs no de-duplication, and SQLite merges them without sorting.
With tag filters the branches are read from the tag table, driven by the first tag.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from adapters.disk_full import full_database_is_insufficient_storage
from adapters.disk_reserve import DiskReserve
from adapters.private_paths import PRIVATE_DIRECTORY, PRIVATE_FILE
from adapters.revision_stamp import RevisionStamp
from imagecore.convert import image_from_record, image_to_record
from imagecore.errors import AlreadyExists, DuplicateContent, VersionConflict
from imagecore.model import Image, ImageState, Job, Position, SortOrder, Visibility
from imagecore.query import Listed, ListQuery, fold_title, read_budget
from imagecore.unicode_text import tag_form

BUSY_TIMEOUT_SECONDS = 10.0
_DELETE_STATES = frozenset({ImageState.DELETING, ImageState.DELETED})
"""The states a delete writes (the tombstone, then the erase): writes that lead to room."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_SCHEMA_V1 = (
    # Instants are integer microseconds since the epoch, so ranges and order are integer
    # comparisons; `record` is the whole image, the other columns are what queries need.
    """CREATE TABLE IF NOT EXISTS images (
        image_id     TEXT PRIMARY KEY,
        user_id      TEXT NOT NULL,
        visibility   TEXT NOT NULL,
        state        TEXT NOT NULL,
        content_type TEXT NOT NULL,
        title_folded TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        version      INTEGER NOT NULL,
        record       TEXT NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS images_by_owner
        ON images (user_id, visibility, state, created_at, image_id)""",
    """CREATE INDEX IF NOT EXISTS images_by_visibility
        ON images (visibility, state, created_at, image_id)""",
    # One edge per tag, carrying copies of the image's columns the tag timelines filter on.
    """CREATE TABLE IF NOT EXISTS image_tags (
        image_id   TEXT NOT NULL,
        tag        TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        visibility TEXT NOT NULL,
        state      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (image_id, tag)
    ) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS image_tags_by_owner
        ON image_tags (tag, user_id, visibility, state, created_at, image_id)""",
    """CREATE INDEX IF NOT EXISTS image_tags_by_visibility
        ON image_tags (tag, visibility, state, created_at, image_id)""",
)

# Reconciliation finds interrupted deletes here without reading every image.
_UNFINISHED_DELETES_V2 = (
    """CREATE INDEX IF NOT EXISTS images_deleting ON images (image_id)
        WHERE state = 'deleting'""",
)

# Duplicate detection finds a user's image by its bytes' hash; reconciliation finds direct
# uploads whose bytes never came, beside interrupted deletes.
_CONTENT_AND_UNSETTLED_V3 = (
    "ALTER TABLE images ADD COLUMN sha256 TEXT NOT NULL DEFAULT ''",
    "UPDATE images SET sha256 = json_extract(record, '$.sha256')",
    """CREATE INDEX IF NOT EXISTS images_by_content ON images (user_id, sha256)
        WHERE state = 'active'""",
    "DROP INDEX IF EXISTS images_deleting",
    """CREATE INDEX IF NOT EXISTS images_unsettled ON images (image_id)
        WHERE state IN ('deleting', 'uploading')""",
)

# Tags were kept lower-cased and titles compared case-folded; both now take the caseless form
# of imagecore.unicode_text, in which a fullwidth "beach" is "beach". Fold what was stored
# before (with the domain's functions, which _migrate registers) and rebuild the tag edges.
_UNICODE_FORMS_V4 = (
    "UPDATE images SET title_folded = imagecore_fold_title(json_extract(record, '$.title'))",
    "UPDATE images SET record = imagecore_retagged(record)"
    " WHERE imagecore_retagged(record) IS NOT record",
    "DELETE FROM image_tags",
    """INSERT OR IGNORE INTO image_tags (image_id, tag, user_id, visibility, state, created_at)
        SELECT i.image_id, t.value, i.user_id, i.visibility, i.state, i.created_at
        FROM images AS i, json_each(i.record, '$.tags') AS t""",
)

# At most one active image of a user claims each content (Image.claims_content): the unique
# index is the rule itself, so two writers can never both take a claim. Images stored before
# claims existed claim nothing.
_CONTENT_CLAIMS_V5 = (
    "ALTER TABLE images ADD COLUMN claims_content INTEGER NOT NULL DEFAULT 0",
    """CREATE UNIQUE INDEX IF NOT EXISTS images_content_claims ON images (user_id, sha256)
        WHERE state = 'active' AND claims_content = 1""",
)

# Background jobs wait beside the images they are for, each written in the transaction of the
# image that needs it (Image.outstanding_jobs), so a job acknowledged with its image survives a
# crash; adapters.sqlite_jobs runs them. Thumbnails left pending by a crash before jobs were kept
# here are queued now, with the domain's rule (which _migrate registers). Reconciliation finds
# thumbnails still pending long after their upload by the last index.
_JOBS_V6 = (
    """CREATE TABLE IF NOT EXISTS jobs (
        job_id        INTEGER PRIMARY KEY AUTOINCREMENT,
        kind          TEXT NOT NULL,
        image_id      TEXT NOT NULL,
        owner         TEXT NOT NULL,
        request_id    TEXT,
        ready_at      INTEGER NOT NULL,
        claimed_until INTEGER,
        claimed_by    TEXT,
        attempts      INTEGER NOT NULL DEFAULT 0,
        UNIQUE (kind, image_id)
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_by_readiness ON jobs (ready_at)",
    "CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, ready_at)",
    """CREATE INDEX IF NOT EXISTS jobs_leased ON jobs (owner, claimed_until)
        WHERE claimed_until IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS job_owners (
        owner       TEXT PRIMARY KEY,
        last_served INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """INSERT OR IGNORE INTO jobs (kind, image_id, owner, ready_at)
        SELECT j.value ->> '$.kind', i.image_id, j.value ->> '$.owner', 0
        FROM images AS i, json_each(imagecore_outstanding_jobs(i.record)) AS j
        WHERE i.state = 'active'""",
    """CREATE INDEX IF NOT EXISTS images_thumbnail_pending ON images (created_at)
        WHERE state = 'active' AND json_extract(record, '$.thumbnail_status') = 'pending'""",
)

# Migration n takes the database from user_version n to n + 1; append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _SCHEMA_V1,
    _UNFINISHED_DELETES_V2,
    _CONTENT_AND_UNSETTLED_V3,
    _UNICODE_FORMS_V4,
    _CONTENT_CLAIMS_V5,
    _JOBS_V6,
)

NO_OWNER = ""
"""The ``owner`` of a job of no known owner (Job.user_id None): never a user id, which are
never empty."""


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _from_micros(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def _prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix``, or None if none is.

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so ``prefix <= s < bound``
    holds exactly for the strings ``s`` that start with ``prefix``.
    """
    stem = prefix.rstrip("\U0010ffff")
    if not stem:
        return None
    last = ord(stem[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are never stored; the next storable is U+E000
        last = 0xE000
    return stem[:-1] + chr(last)


def _encode(image: Image) -> str:
    return _dump(image_to_record(image))


def _dump(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _retagged(record: str) -> str:
    """A stored record with its tags in the form tags are kept in now, each once; the same
    string if they already were."""
    fields = json.loads(record)
    tags = list(dict.fromkeys(tag for tag in map(tag_form, fields["tags"]) if tag))
    if tags == fields["tags"]:
        return record
    return _dump({**fields, "tags": tags})


def _columns(image: Image) -> tuple[object, ...]:
    """The values of the columns lists read, in the order the INSERT and UPDATE name them."""
    return (
        image.user_id,
        image.visibility.value,
        image.state.value,
        image.content_type,
        fold_title(image.title),
        _micros(image.created_at),
        image.version,
        image.sha256,
        image.claims_content,
        _encode(image),
    )


@functools.lru_cache(maxsize=4096)
def _decode(record: str) -> Image:
    """The image a stored record holds. Images are immutable and a record is the whole image,
    so equal records decode to one shared object: a page of 50 read again (the common case)
    costs a dictionary lookup per row instead of a JSON parse and a structuring each."""
    return image_from_record(json.loads(record))


def _create_private(path: Path) -> None:
    """Make the database file 0o600 before SQLite makes it 0o644: SQLite gives its -wal and
    -shm files the mode of the database file.

    Only a file that does not exist yet is opened: closing any descriptor of the file drops
    every POSIX lock this process holds on it, those of its open connections included, and a
    connection whose locks are gone may read a database another changed under it."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))


def now_micros() -> int:
    """The wall-clock time as the database keeps instants: every process on the machine agrees
    on it, and it holds across restarts, as the times jobs wait for and leases last must."""
    return time.time_ns() // 1000


def _outstanding_jobs(record: str) -> str:
    """The jobs a stored image needs, as a JSON array of ``{"kind", "owner"}``."""
    jobs = _decode(record).outstanding_jobs
    return json.dumps([{"kind": job.kind, "owner": job.user_id or NO_OWNER} for job in jobs])


def insert_jobs(
    connection: sqlite3.Connection, jobs: Iterable[Job], request_id: str | None
) -> None:
    """Queue ``jobs``, ready now, in the caller's write transaction; a job queued already (of
    the same kind, for the same image) is kept as it is, waiting or running."""
    ready_at = now_micros()
    connection.executemany(
        "INSERT OR IGNORE INTO jobs (kind, image_id, owner, request_id, ready_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(job.kind, job.image_id, job.user_id or NO_OWNER, request_id, ready_at) for job in jobs],
    )


class SqliteDatabase:
    """The imagecore database: one SQLite file in WAL mode, its schema brought up to date when
    it is opened. One connection per thread.

    With a ``reserve``, a write commits only while the reserve is whole, so none can take its
    room; a delete's writes, which lead to room, may spend it when the disk is full. A write the
    disk has no room for raises InsufficientStorage and changes nothing."""

    def __init__(self, path: Path, reserve: DiskReserve | None = None) -> None:
        self._path = path
        self._reserve = reserve
        self._local = threading.local()
        path.parent.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        _create_private(path)
        self._revision = RevisionStamp(path.with_name(f"{path.name}-revision"))
        self._migrate()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # isolation_level=None: the module opens no transactions, we issue BEGIN ourselves;
            # timeout is SQLite's busy timeout, how long to wait for another writer's lock.
            connection = sqlite3.connect(
                self._path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None
            )
            connection.execute("PRAGMA journal_mode = WAL")
            # FULL syncs the WAL at each commit. NORMAL may roll back the last commits after a
            # power loss: acknowledged uploads would vanish, and a delete's tombstone could be
            # undone while the unlink of its bytes was kept, leaving an image without bytes.
            connection.execute("PRAGMA synchronous = FULL")
            self._local.connection = connection
        return connection

    def revision(self) -> bytes:
        """Changes whenever a write is committed, by any connection of any process; read with
        no system call (adapters.revision_stamp)."""
        return self._revision.current()

    @contextlib.contextmanager
    def write(self, *, deleting: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the write lock at once, so it never fails to upgrade.
        ``deleting``: a write that leads to room (a delete's), which may spend the reserve."""
        connection = self.connection()
        with full_database_is_insufficient_storage():
            connection.execute("BEGIN IMMEDIATE")
            try:
                # Taken with SQLite's lock held and kept until the commit: every thread takes
                # the two in this order, and the blob store never takes SQLite's.
                with self._room(deleting):
                    yield connection
                    connection.execute("COMMIT")
                    self._revision.advance()
            except BaseException:
                if connection.in_transaction:  # a full disk has SQLite roll back by itself
                    connection.execute("ROLLBACK")
                raise

    def _room(self, deleting: bool) -> AbstractContextManager[None]:
        """What a write holds of the reserve until it commits: a delete's may spend it, any
        other needs it whole."""
        if self._reserve is None:
            return contextlib.nullcontext()
        return self._reserve.spent_if_full() if deleting else self._reserve.taking_space()

    def _migrate(self) -> None:
        (version,) = self.connection().execute("PRAGMA user_version").fetchone()
        if version == len(_MIGRATIONS):
            return  # nothing to write, so a full disk does not stop the server from starting
        functions = self.connection().create_function
        functions("imagecore_fold_title", 1, fold_title, deterministic=True)
        functions("imagecore_retagged", 1, _retagged, deterministic=True)
        functions("imagecore_outstanding_jobs", 1, _outstanding_jobs, deterministic=True)
        with self.write() as connection:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            if version > len(_MIGRATIONS):
                raise RuntimeError(
                    f"{self._path} has schema version {version}; this code knows up to "
                    f"{len(_MIGRATIONS)}: upgrade imagecore"
                )
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    connection.execute(statement)
            # PRAGMA takes no bound parameters; the value is our own integer.
            connection.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")

    def close(self) -> None:
        """Close this thread's connection; another call opens a new one."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            del self._local.connection
            connection.close()


LOCAL_READS_PER_BUDGETED_READ = 50
"""An index entry read here costs well under a microsecond, not a share of a read unit and of
API Gateway's 29 s: fifty times the service's read budget (about 10,000 entries for a page of
50) keeps the slowest list request under 10 ms while a rare filter still fills its pages."""


def local_read_budget(limit: int) -> int:
    """How many index entries a list of up to ``limit`` images reads here at most."""
    return LOCAL_READS_PER_BUDGETED_READ * read_budget(limit)


class SqliteImageRepository:
    """The ``ImageRepository`` port on the SQLite database (see SqliteDatabase for the disk
    reserve). An image's outstanding jobs (Image.outstanding_jobs) are queued in the transaction
    that stores it, for adapters.sqlite_jobs to run; ``request_id``, the context variable that
    holds the id of the request being served, is kept with them for their log lines."""

    def __init__(
        self,
        path: Path,
        reserve: DiskReserve | None = None,
        request_id: ContextVar[str | None] | None = None,
        read_budget: Callable[[int], int] = local_read_budget,
    ) -> None:
        self._database = SqliteDatabase(path, reserve)
        self._request_id = request_id
        self._read_budget = read_budget

    def _connection(self) -> sqlite3.Connection:
        return self._database.connection()

    def revision(self) -> bytes:
        return self._database.revision()

    def _write(self, *, deleting: bool = False) -> AbstractContextManager[sqlite3.Connection]:
        return self._database.write(deleting=deleting)

    def close(self) -> None:
        """Close this thread's connection; another call opens a new one."""
        self._database.close()

    def add(self, image: Image) -> None:
        with self._write() as connection:
            try:
                connection.execute(
                    "INSERT INTO images (user_id, visibility, state, content_type, title_folded,"
                    " created_at, version, sha256, claims_content, record, image_id)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*_columns(image), image.image_id),
                )
            except sqlite3.IntegrityError:
                # The id or the content claim is taken (the port puts a taken id first; SQLite
                # may check the claims' index first).
                taken = connection.execute(
                    "SELECT 1 FROM images WHERE image_id = ?", (image.image_id,)
                ).fetchone()
                if taken is not None:
                    raise AlreadyExists(image.image_id) from None
                raise DuplicateContent(self._claim_holder(connection, image)) from None
            self._insert_tags(connection, image)
            self._queue_outstanding_jobs(connection, image)

    def get(self, image_id: str) -> Image | None:
        row = (
            self._connection()
            .execute("SELECT record FROM images WHERE image_id = ?", (image_id,))
            .fetchone()
        )
        return _decode(row[0]) if row is not None else None

    def replace(self, image: Image, expected_version: int) -> None:
        with self._write(deleting=image.state in _DELETE_STATES) as connection:
            try:
                cursor = connection.execute(
                    "UPDATE images SET user_id = ?, visibility = ?, state = ?, content_type = ?,"
                    " title_folded = ?, created_at = ?, version = ?, sha256 = ?,"
                    " claims_content = ?, record = ? WHERE image_id = ? AND version = ?",
                    (*_columns(image), image.image_id, expected_version),
                )
            except sqlite3.IntegrityError:  # the claims' index: no update changes an image's id
                raise DuplicateContent(self._claim_holder(connection, image)) from None
            if cursor.rowcount == 0:
                raise VersionConflict(image.image_id)
            connection.execute("DELETE FROM image_tags WHERE image_id = ?", (image.image_id,))
            self._insert_tags(connection, image)
            self._queue_outstanding_jobs(connection, image)

    def _queue_outstanding_jobs(self, connection: sqlite3.Connection, image: Image) -> None:
        # Only added, never removed here: a job row is also the lease of whoever runs it, and
        # the queue removes it when the job ends (at once, for work no longer outstanding).
        jobs = image.outstanding_jobs
        if jobs:
            request_id = None if self._request_id is None else self._request_id.get()
            insert_jobs(connection, jobs, request_id)

    @staticmethod
    def _claim_holder(connection: sqlite3.Connection, image: Image) -> str:
        """The image that holds the content claim ``image`` was refused for: read in the
        refused write's transaction, so it holds the claim still."""
        (holder,) = connection.execute(
            "SELECT image_id FROM images WHERE user_id = ? AND sha256 = ? AND state = 'active'"
            " AND claims_content = 1",
            (image.user_id, image.sha256),
        ).fetchone()
        return str(holder)

    @staticmethod
    def _insert_tags(connection: sqlite3.Connection, image: Image) -> None:
        created_at = _micros(image.created_at)
        connection.executemany(
            "INSERT INTO image_tags (image_id, tag, user_id, visibility, state, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    image.image_id,
                    tag,
                    image.user_id,
                    image.visibility.value,
                    image.state.value,
                    created_at,
                )
                for tag in dict.fromkeys(image.tags)
            ],
        )

    def list(self, query: ListQuery, caller: str, after: Position | None, limit: int) -> Listed:
        if limit <= 0:
            return Listed([])
        connection = self._connection()
        read_up_to: Position | None = None
        budget_end = budget_end_statement(query, caller, after, self._read_budget(limit))
        if budget_end is not None:
            # Where the budget ends: that many entries in, on the index alone.
            last = connection.execute(*budget_end).fetchone()
            if last is not None:
                read_up_to = Position(_from_micros(last[0]), last[1])
        rows = connection.execute(*list_statement(query, caller, after, limit, read_up_to))
        images = [_decode(record) for _, _, record in rows.fetchall()]
        return Listed(images, read_up_to if len(images) < limit else None)

    def find_by_content(self, user_id: str, sha256: str) -> Image | None:
        row = (
            self._connection()
            .execute(
                "SELECT record FROM images WHERE user_id = ? AND sha256 = ? AND state = 'active'"
                " ORDER BY created_at LIMIT 1",
                (user_id, sha256),
            )
            .fetchone()
        )
        return _decode(row[0]) if row is not None else None

    def unsettled(self) -> Iterator[Image]:
        rows = (
            self._connection()
            .execute("SELECT record FROM images WHERE state IN ('deleting', 'uploading')")
            .fetchall()
        )
        return (_decode(record) for (record,) in rows)

    def pending_thumbnails(self, created_before: datetime) -> Iterator[Image]:
        rows = (
            self._connection()
            .execute(
                # The terms of the images_thumbnail_pending index, so that it is the one read.
                "SELECT record FROM images WHERE state = 'active'"
                " AND json_extract(record, '$.thumbnail_status') = 'pending' AND created_at < ?",
                (_micros(created_before),),
            )
            .fetchall()
        )
        return (_decode(record) for (record,) in rows)


@attrs.frozen
class _ListParts:
    """What the statements of one list share: the driving table (``key``: the tag table for the
    first tag, else the images themselves) and its branches (owner parameter or None,
    visibility parameter), the conditions its indexes answer, the filters checked on each entry
    they give, and the parameters of both."""

    key: str
    branches: list[tuple[str | None, str]]
    indexed: list[str]
    filters: list[str]
    parameters: dict[str, Any]
    direction: str

    def union(self, columns: str, tables: str, conditions: list[str]) -> str:
        selects = []
        for owner, visibility in self.branches:
            branch = [f"{self.key}.visibility = :{visibility}", *conditions]
            if owner is not None:
                branch.insert(0, f"{self.key}.user_id = :{owner}")
            selects.append(
                f"SELECT {columns} FROM {tables} WHERE {' AND '.join(branch)}"  # noqa: S608
            )
        # A compound ORDER BY makes SQLite merge the branches as each reads its index in
        # order, stopping at the limit: nothing is sorted, nothing past the page is read.
        direction = self.direction
        return " UNION ALL ".join(selects) + (
            f" ORDER BY created_at {direction}, image_id {direction}"
        )

    @property
    def position(self) -> str:
        return f"{self.key}.created_at AS created_at, {self.key}.image_id AS image_id"


def _list_parts(query: ListQuery, caller: str, after: Position | None) -> _ListParts:
    """Only fixed fragments and placeholder names are formatted into the text; every value is
    bound."""
    descending = query.order is SortOrder.DESC
    parameters: dict[str, Any] = {
        "caller": caller,
        "user": query.user_id,
        "private": Visibility.PRIVATE.value,
        "public": Visibility.PUBLIC.value,
        "active": ImageState.ACTIVE.value,
    }
    branches: list[tuple[str | None, str]] = []
    if query.user_id is None or query.user_id == caller:
        branches.append(("caller", "private"))
    branches.append((None if query.user_id is None else "user", "public"))

    tags = tuple(dict.fromkeys(query.tags))
    key = "t" if tags else "i"
    indexed: list[str] = []
    filters: list[str] = []
    if tags:
        indexed.append("t.tag = :tag0")
        parameters["tag0"] = tags[0]
        for index, tag in enumerate(tags[1:], start=1):
            filters.append(
                "EXISTS (SELECT 1 FROM image_tags AS x"  # noqa: S608
                f" WHERE x.image_id = t.image_id AND x.tag = :tag{index})"
            )
            parameters[f"tag{index}"] = tag
    indexed.append(f"{key}.state = :active")
    if query.content_type is not None:
        filters.append("i.content_type = :content_type")
        parameters["content_type"] = query.content_type
    if query.title_prefix:
        prefix = fold_title(query.title_prefix)
        filters.append("i.title_folded >= :title_low")
        parameters["title_low"] = prefix
        upper = _prefix_upper_bound(prefix)
        if upper is not None:
            filters.append("i.title_folded < :title_high")
            parameters["title_high"] = upper
    if query.start_date is not None:
        indexed.append(f"{key}.created_at >= :start")
        parameters["start"] = _micros(query.start_date)
    if query.end_date is not None:
        indexed.append(f"{key}.created_at <= :end")
        parameters["end"] = _micros(query.end_date)
    if after is not None:
        comparison = "<" if descending else ">"
        indexed.append(f"({key}.created_at, {key}.image_id) {comparison} (:after_at, :after_id)")
        parameters["after_at"] = _micros(after.created_at)
        parameters["after_id"] = after.image_id
    return _ListParts(key, branches, indexed, filters, parameters, "DESC" if descending else "ASC")


def list_statement(
    query: ListQuery,
    caller: str,
    after: Position | None,
    limit: int,
    up_to: Position | None = None,
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a list, reading no index entry past ``up_to``."""
    parts = _list_parts(query, caller, after)
    key = parts.key
    source = (
        "image_tags AS t CROSS JOIN images AS i ON i.image_id = t.image_id"
        if key == "t"
        else "images AS i"
    )
    conditions = [*parts.indexed, *parts.filters]
    parameters = {**parts.parameters, "limit": limit}
    if up_to is not None:
        comparison = ">=" if parts.direction == "DESC" else "<="
        conditions.append(f"({key}.created_at, {key}.image_id) {comparison} (:up_to_at, :up_to_id)")
        parameters |= {"up_to_at": _micros(up_to.created_at), "up_to_id": up_to.image_id}
    columns = f"{parts.position}, i.record AS record"
    return parts.union(columns, source, conditions) + " LIMIT :limit", parameters


def budget_end_statement(
    query: ListQuery, caller: str, after: Position | None, budget: int
) -> tuple[str, dict[str, Any]] | None:
    """The SQL and parameters that find the index entry a list's read ``budget`` ends at, read
    on the driving index alone; None when its indexes answer every condition (each entry read
    is then a match, and the limit bounds the reads)."""
    parts = _list_parts(query, caller, after)
    if not parts.filters:
        return None
    driving = "image_tags AS t" if parts.key == "t" else "images AS i"
    sql = parts.union(parts.position, driving, parts.indexed) + " LIMIT 1 OFFSET :skipped"
    return sql, {**parts.parameters, "skipped": budget - 1}
