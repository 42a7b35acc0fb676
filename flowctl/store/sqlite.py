"""The runner's store: every row the engine and the daemon keep, in one SQLite file.

All SQL in flowctl lives in this module. `SqliteStore` implements the engine's
`Store` protocol (flowctl.engine.store) plus what only the runner needs:
bundle versions, the audit log, API tokens, the raw event log, the outbox
claim used by the delivery worker, API listings, statistics and retention.

Layout: each engine model is stored whole as JSON in a `data` column (it
round-trips through `model_validate_json`), next to the few columns the
protocol looks rows up by. Instants in indexed columns are ISO-8601 UTC strings
of one fixed width, so string order is time order.

Durability: WAL mode, `synchronous=FULL` by default (a commit is on disk when
COMMIT returns; `durability="normal"` trades the last commits on a power loss
for one fsync less per commit, see `connect`), explicit transactions
(`BEGIN IMMEDIATE`). `transaction()` nests with SAVEPOINTs, so the runner can
run several engine calls in one group commit and still roll back exactly the
call that failed.

Schema changes are migrations numbered by `PRAGMA user_version`; a database
written by a newer flowctl is refused rather than guessed at.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from flowctl.engine.state import (
    OPEN_RUN_STATUSES,
    OPEN_TASK_STATUSES,
    Message,
    ProcessedEvent,
    Record,
    Run,
    StepAttempt,
    Task,
    TimelineEntry,
    Timer,
    TraceEntry,
)
from flowctl.errors import FlowctlError

UTC = dt.UTC
M = TypeVar("M", bound=BaseModel)
_NO_OP = nullcontext()


class StoreError(FlowctlError):
    """The runner database cannot be opened or has an unexpected schema."""


class VersionConflict(FlowctlError):
    """A bundle was applied against a live version that has since changed."""

    def __init__(self, expected: int, live: int) -> None:
        super().__init__(
            f"the runner is at bundle version {live}, not {expected}",
            hint="someone applied in the meantime; run `flowctl plan` again and apply the new plan",
        )
        self.expected = expected
        self.live = live


def ts(value: dt.datetime | None) -> str | None:
    """An aware instant as a fixed-width UTC string (`2026-03-02T09:00:00.000000+00:00`), sortable as text."""
    if value is None:
        return None
    return _utc_text(value)


# Cached: one engine call writes a dozen rows stamped with the same `now`. The text depends only
# on the instant, which is what datetimes hash and compare by (naive ones raise and are not cached).
@lru_cache(maxsize=1024)
def _utc_text(value: dt.datetime) -> str:
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; every instant must be aware UTC")
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def parse_ts(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromisoformat(value)


def _dump(model: BaseModel) -> str:
    return model.model_dump_json(by_alias=True)


def _load(cls: type[M], data: str | bytes) -> M:
    return cls.model_validate_json(data)


def _marks(count: int) -> str:
    """`?, ?, ...` placeholders for an IN list of `count` values."""
    return ",".join("?" * count)


class _Where:
    """A WHERE clause built from optional filters: a filter whose value is None is left out."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.params: list[Any] = []

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def eq(self, column: str, value: Any) -> None:
        if value is not None:
            self.add(f"{column} = ?", value)

    def since(self, column: str, value: dt.datetime | None) -> None:
        if value is not None:
            self.add(f"{column} >= ?", ts(value))

    def any_of(self, column: str, values: Iterable[Any]) -> None:
        wanted = list(values)
        self.add(f"{column} IN ({_marks(len(wanted))})", *wanted)

    def __str__(self) -> str:
        return " WHERE " + " AND ".join(self.clauses) if self.clauses else ""


# --------------------------------------------------------------------------- schema

# Each entry migrates from version i to i + 1. Never edit a shipped entry; append.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE kv (namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                     PRIMARY KEY (namespace, key)) WITHOUT ROWID;

    CREATE TABLE records (
        rid INTEGER PRIMARY KEY,
        object TEXT NOT NULL, id TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL, data TEXT NOT NULL,
        UNIQUE (object, id));
    CREATE TABLE timeline (
        seq INTEGER PRIMARY KEY, object TEXT NOT NULL, record_id TEXT NOT NULL, at TEXT NOT NULL,
        run_id TEXT, data TEXT NOT NULL);
    CREATE INDEX timeline_record ON timeline (object, record_id, seq);

    CREATE TABLE runs (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE, flow TEXT NOT NULL, version INTEGER NOT NULL,
        object TEXT, record_id TEXT, status TEXT NOT NULL, parent_run_id TEXT,
        started_at TEXT NOT NULL, ended_at TEXT, error_class TEXT, data TEXT NOT NULL);
    CREATE INDEX runs_flow ON runs (flow, status);
    CREATE INDEX runs_status ON runs (status);
    CREATE INDEX runs_record ON runs (object, record_id);
    CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
    CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;

    CREATE TABLE step_attempts (
        n INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL, step TEXT NOT NULL, attempt INTEGER NOT NULL,
        flow TEXT NOT NULL, status TEXT NOT NULL, error_class TEXT,
        started_at TEXT NOT NULL, ended_at TEXT, data TEXT NOT NULL,
        UNIQUE (run_id, step, attempt));

    CREATE TABLE tasks (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, run_id TEXT, step TEXT, assignee TEXT,
        status TEXT NOT NULL, created_at TEXT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX tasks_run ON tasks (run_id);
    CREATE INDEX tasks_status ON tasks (status);

    CREATE TABLE messages (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE, idempotency_key TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,
        status TEXT NOT NULL, run_id TEXT, created_at TEXT NOT NULL, sent_at TEXT, data TEXT NOT NULL);
    CREATE INDEX messages_status ON messages (status);
    CREATE INDEX messages_run ON messages (run_id);

    CREATE TABLE timers (
        id TEXT PRIMARY KEY, seq INTEGER NOT NULL, kind TEXT NOT NULL, due_at TEXT NOT NULL,
        owner TEXT NOT NULL, run_id TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL,
        data TEXT NOT NULL);
    CREATE INDEX timers_due ON timers (due_at, seq) WHERE status = 'pending';
    CREATE INDEX timers_owner ON timers (owner, status);

    CREATE TABLE processed_events (
        idempotency_key TEXT PRIMARY KEY, event_id TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL);
    CREATE INDEX processed_at ON processed_events (at);

    CREATE TABLE trace (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, run_id TEXT, data TEXT NOT NULL);
    CREATE INDEX trace_run ON trace (run_id, seq) WHERE run_id IS NOT NULL;
    CREATE INDEX trace_at ON trace (at);

    CREATE TABLE events (
        n INTEGER PRIMARY KEY, event_id TEXT NOT NULL, received_at TEXT NOT NULL,
        idempotency_key TEXT, duplicate INTEGER NOT NULL, data TEXT NOT NULL);
    CREATE INDEX events_received ON events (received_at);

    CREATE TABLE bundles (
        version INTEGER PRIMARY KEY, hash TEXT NOT NULL, data TEXT NOT NULL,
        applied_at TEXT NOT NULL, meta TEXT NOT NULL);

    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT, role TEXT, action TEXT NOT NULL,
        target TEXT, detail TEXT NOT NULL);

    CREATE TABLE tokens (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL, revoked_at TEXT);

    CREATE TABLE crm_outbox (
        n INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, object TEXT NOT NULL,
        record_id TEXT NOT NULL, run_id TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_try_at TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT, error TEXT,
        payload TEXT NOT NULL);
    CREATE INDEX crm_outbox_status ON crm_outbox (status, next_try_at);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


# runner.yaml `durability`, as the WAL `synchronous` level it sets. In WAL mode (SQLite docs,
# "PRAGMA synchronous"): FULL syncs the WAL at every commit, so a commit that returned survives a
# power loss; NORMAL syncs only at checkpoints, so a commit survives any crash of the process
# (kill -9, OOM: the WAL is in the OS page cache) but an OS crash or power loss may roll back the
# last commits. Neither can corrupt the database.
Durability = Literal["full", "normal"]
SYNCHRONOUS: dict[str, str] = {"full": "FULL", "normal": "NORMAL"}


def connect(
    path: Path | str, *, readonly: bool = False, durability: Durability = "full"
) -> sqlite3.Connection:
    """Open the database with the pragmas the runner relies on.

    `isolation_level=None`: transactions are explicit (BEGIN IMMEDIATE / COMMIT),
    never opened implicitly by the sqlite3 module behind our back.
    """
    if durability not in SYNCHRONOUS:
        raise ValueError(f"durability must be one of {', '.join(SYNCHRONOUS)}, not {durability!r}")
    path = Path(path)
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the runner database {path}: {exc}") from None
    conn.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: could not switch the database to WAL mode (got {mode})")
    # FULL (the default): a COMMIT that returned is on disk. With group commit the fsync is paid
    # once per batch; a client waiting on each answer pays it per event (see docs/runner.md).
    conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")
    return conn


def migrate(conn: sqlite3.Connection, path: Path | str = "runner.db") -> int:
    """Bring the schema to SCHEMA_VERSION; return the version found before."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer flowctl (schema {found}, this one knows {SCHEMA_VERSION})",
            hint="upgrade flowctl, or point --db at another file",
        )
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def _split_sql(script: str) -> list[str]:
    # executescript() would COMMIT our open transaction; run statements one by one instead.
    return [s.strip() for s in script.split(";") if s.strip()]


# The write-behind buffers' statements. Parameters end with the row's data JSON.
_UPSERT_SQL: dict[str, str] = {
    "records": (
        "INSERT INTO records (object, id, deleted, updated_at, data) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (object, id) DO UPDATE SET deleted = excluded.deleted, updated_at = excluded.updated_at, "
        "data = excluded.data"
    ),
    "runs": (
        "INSERT INTO runs (id, flow, version, object, record_id, status, parent_run_id, started_at, ended_at, "
        "error_class, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "status = excluded.status, ended_at = excluded.ended_at, error_class = excluded.error_class, "
        "data = excluded.data"
    ),
    "step_attempts": (
        "INSERT INTO step_attempts (run_id, step, attempt, flow, status, error_class, started_at, ended_at, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step, attempt) DO UPDATE SET "
        "status = excluded.status, error_class = excluded.error_class, ended_at = excluded.ended_at, "
        "data = excluded.data"
    ),
    "tasks": (
        "INSERT INTO tasks (id, kind, run_id, step, assignee, status, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET assignee = excluded.assignee, status = excluded.status, data = excluded.data"
    ),
    "messages": (
        "INSERT INTO messages (id, idempotency_key, channel, status, run_id, created_at, sent_at, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
        "sent_at = excluded.sent_at, data = excluded.data"
    ),
    "timers": (
        "INSERT INTO timers (id, seq, kind, due_at, owner, run_id, status, created_at, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, kind = excluded.kind, "
        "due_at = excluded.due_at, owner = excluded.owner, run_id = excluded.run_id, status = excluded.status, "
        "data = excluded.data"
    ),
    "processed_events": (
        "INSERT INTO processed_events (idempotency_key, event_id, at, data) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (idempotency_key) DO UPDATE SET event_id = excluded.event_id, data = excluded.data"
    ),
}
_APPEND_SQL: dict[str, str] = {
    "trace": "INSERT INTO trace (seq, at, kind, run_id, data) VALUES (?, ?, ?, ?, ?)",
    "timeline": "INSERT INTO timeline (seq, object, record_id, at, run_id, data) VALUES (?, ?, ?, ?, ?, ?)",
    "events": (
        "INSERT INTO events (event_id, received_at, idempotency_key, duplicate, data) VALUES (?, ?, ?, ?, ?)"
    ),
}


# --------------------------------------------------------------------------- runner-side rows


@dataclass(frozen=True)
class Observation:
    """One write the runner reacts to after commit.

    kind `trace`: `model` is the TraceEntry (never changed after it is appended);
    `attempt`, `timer`, `message`: `model` is a snapshot of the fields the runner
    reads (the engine keeps mutating its own models after writing them).
    """

    kind: str
    model: Any


@dataclass(frozen=True)
class AttemptNote:
    flow: str
    step: str
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None


@dataclass(frozen=True)
class TimerNote:
    status: str
    due_at: dt.datetime


@dataclass(frozen=True)
class MessageNote:
    status: str
    channel: str


@dataclass(frozen=True)
class BundleVersion:
    version: int
    hash: str
    applied_at: dt.datetime
    meta: dict[str, Any]
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str | None
    role: str | None
    action: str
    target: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class CrmForward:
    n: int
    idempotency_key: str
    object: str
    record_id: str
    run_id: str | None
    attempts: int
    payload: dict[str, Any]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _bundle_version(row: tuple[Any, ...]) -> BundleVersion:
    """A `SELECT version, hash, applied_at, meta[, data]` row (data only when selected)."""
    return BundleVersion(
        version=row[0],
        hash=row[1],
        applied_at=parse_ts(row[2]) or dt.datetime.now(UTC),
        meta=json.loads(row[3]),
        data=json.loads(row[4]) if len(row) > 4 else None,
    )


def _token_info(row: tuple[Any, ...]) -> TokenInfo:
    """A `SELECT id, name, role, created_at, revoked_at` row."""
    return TokenInfo(
        id=row[0],
        name=row[1],
        role=row[2],
        created_at=parse_ts(row[3]) or dt.datetime.now(UTC),
        revoked_at=parse_ts(row[4]),
    )


# --------------------------------------------------------------------------- the store


class SqliteStore:
    """Implements `flowctl.engine.store.Store` on one SQLite connection.

    One instance is used by one thread at a time: the runner's writer thread
    owns the writing store; API reads open their own (`SqliteStore.open(...,
    readonly=True)`), which WAL lets run alongside the writer.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path | str = ":memory:") -> None:
        self.conn = conn
        self.path = Path(path)
        self._depth = 0
        self._savepoints = 0
        # Counters are cached: the writer is the only process allocating ids,
        # and ids burnt by a rolled-back transaction are simply never used.
        self._counters: dict[str, int] = {}
        self._dirty_counters: set[str] = set()
        self._lock = threading.RLock()
        self.statements = 0  # rows written, for the benchmark's raw-SQLite comparison
        # What the current transaction did, for the runner's after-commit work
        # (wake the timer loop, the outbox worker, count metrics). Truncated when
        # a savepoint rolls back, dropped when the transaction does, handed out
        # by `take_committed()` once it is on disk.
        self.observe = False
        # Called inside the transaction for every trace entry (the runner writes CRM
        # forwards there, so they commit or roll back with the change they forward).
        self.trace_hook: Callable[[TraceEntry], None] | None = None
        self._observed: list[Observation] = []
        self._committed: list[Observation] = []
        # Write-behind buffers: rows are written with one executemany per table when
        # the transaction commits or before SQL reads a buffered table, so an engine
        # call costs a few statements instead of dozens (each sqlite3 call releases
        # and re-takes the GIL, which the API's event loop competes for).
        # Upserts keep the last row per primary key; the data JSON is the last field.
        self._upserts: dict[str, dict[Any, tuple[Any, ...]]] = {table: {} for table in _UPSERT_SQL}
        self._appends: dict[str, list[tuple[Any, ...]]] = {table: [] for table in _APPEND_SQL}
        # Undo log for savepoints: how to bring the buffers back to a savepoint's start
        # (SQLite's ROLLBACK TO restores the rows already flushed).
        self._journal: list[tuple[Any, ...]] = []
        self._marks: list[int] = []
        # Records read in the current transaction, as stored JSON: the engine reads
        # the triggering record several times per call.
        self._records: dict[tuple[str, str], str | None] = {}
        self._kv: dict[tuple[str, str], str | None] = {}  # likewise for the engine's kv reads

    @classmethod
    def open(
        cls, path: Path | str, *, readonly: bool = False, durability: Durability = "full"
    ) -> SqliteStore:
        conn = connect(path, readonly=readonly, durability=durability)
        if not readonly:
            migrate(conn, path)
        else:
            found = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if found != SCHEMA_VERSION:
                raise StoreError(
                    f"{path}: schema version {found}, expected {SCHEMA_VERSION}; start the runner once"
                )
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT at the outermost level, a SAVEPOINT inside it."""
        with self._lock:
            if self._depth == 0:
                self.conn.execute("BEGIN IMMEDIATE")
                self._depth = 1
                try:
                    yield
                    self._flush()
                    self._flush_counters()
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    self._observed.clear()
                    self._discard_buffers()
                    raise
                finally:
                    self._depth = 0
                    self._records.clear()
                    self._kv.clear()
                    self._journal.clear()
                    self._marks.clear()
                self._committed.extend(self._observed)
                self._observed.clear()
            elif self._marks:
                # Inside a savepoint already (the writer gives every engine call one, and the
                # engine opens its own transaction inside it): join it, like a nested
                # `atomic(savepoint=False)`. An error still rolls the enclosing savepoint back.
                yield
            else:
                self._savepoints += 1
                name = f"sp{self._savepoints}"
                observed = len(self._observed)
                self._marks.append(len(self._journal))
                self.conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield
                    self.conn.execute(f"RELEASE {name}")
                except BaseException:
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                    del self._observed[observed:]
                    self._undo_to(self._marks[-1])
                    self._records.clear()
                    self._kv.clear()
                    raise
                finally:
                    self._depth -= 1
                    self._marks.pop()
                    if not self._marks:
                        self._journal.clear()  # only savepoints need the undo log

    def _buffer_put(self, table: str, key: Any, row: tuple[Any, ...]) -> None:
        rows = self._upserts[table]
        if self._marks:
            self._journal.append(("put", table, key, rows.get(key)))
        rows[key] = row

    def _buffer_append(self, table: str, row: tuple[Any, ...]) -> None:
        self._appends[table].append(row)
        if self._marks:
            self._journal.append(("append", table))

    def _buffered(self, table: str, key: Any) -> str | None:
        """The data JSON of a buffered row, or None when the row is not buffered."""
        row = self._upserts[table].get(key)
        return None if row is None else str(row[-1])

    def _flush(self, *tables: str) -> None:
        """Write the buffered rows of `tables` (all when none is named): before a commit, or before
        SQL reads one of them."""
        for table, rows in self._upserts.items():
            if rows and (not tables or table in tables):
                self.conn.executemany(_UPSERT_SQL[table], list(rows.values()))
                self.statements += len(rows)
                if self._marks:
                    self._journal.append(("flush", table, rows))
                self._upserts[table] = {}
        for table, items in self._appends.items():
            if items and (not tables or table in tables):
                self.conn.executemany(_APPEND_SQL[table], items)
                self.statements += len(items)
                if self._marks:
                    self._journal.append(("flush", table, items))
                self._appends[table] = []

    def _undo_to(self, mark: int) -> None:
        """Bring the buffers back to what they held when the journal had `mark` entries."""
        while len(self._journal) > mark:
            entry = self._journal.pop()
            if entry[0] == "put":
                _, table, key, previous = entry
                if previous is None:
                    self._upserts[table].pop(key, None)
                else:
                    self._upserts[table][key] = previous
            elif entry[0] == "append":
                self._appends[entry[1]].pop()
            else:  # a flush inside the savepoint: ROLLBACK TO took those rows out of SQL again
                _, table, snapshot = entry
                if table in self._upserts:
                    self._upserts[table] = snapshot
                else:
                    self._appends[table] = snapshot

    def _discard_buffers(self) -> None:
        for table in self._upserts:
            self._upserts[table] = {}
        for table in self._appends:
            self._appends[table] = []

    def take_committed(self) -> list[Observation]:
        """What committed transactions did since the last call (only when `observe` is on)."""
        out, self._committed = self._committed, []
        return out

    def _note(self, kind: str, note: Any) -> None:
        self._observed.append(Observation(kind, note))

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def _write(self) -> AbstractContextManager[None]:
        # Inside an engine call: nothing to do (a shared no-op, this is the hot path).
        # A write outside one (tests, tooling) gets its own transaction.
        return _NO_OP if self._depth else self.transaction()

    def _exec(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Cursor:
        self.statements += 1
        return self.conn.execute(sql, params)

    def _get(self, cls: type[M], table: str, column: str, key: Any) -> M | None:
        """The row whose key `column` is `key`: from the write-behind buffer when it is there, else from SQL."""
        buffered = self._buffered(table, key)
        if buffered is not None:
            return _load(cls, buffered)
        row = self.conn.execute(f"SELECT data FROM {table} WHERE {column} = ?", (key,)).fetchone()
        return None if row is None else _load(cls, row[0])

    def _models(self, cls: type[M], sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[M]:
        """The models a `SELECT data ...` returns, in its order."""
        return [_load(cls, r[0]) for r in self.conn.execute(sql, params).fetchall()]

    # ------------------------------------------------------------- bookkeeping
    def next_seq(self, name: str) -> int:
        with self._lock:
            if name not in self._counters:
                row = self.conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
                self._counters[name] = int(row[0]) if row else 0
            self._counters[name] += 1
            self._dirty_counters.add(name)
            if not self._depth:
                with self.transaction():
                    pass
            return self._counters[name]

    def next_id(self, prefix: str) -> str:
        return f"{prefix}-{self.next_seq(prefix)}"

    def _flush_counters(self) -> None:
        if not self._dirty_counters:
            return
        self.conn.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            [(n, self._counters[n]) for n in sorted(self._dirty_counters)],
        )
        self.statements += len(self._dirty_counters)
        self._dirty_counters.clear()

    def kv_get(self, namespace: str, key: str) -> Any:
        cache_key = (namespace, key)
        if self._depth and cache_key in self._kv:
            cached = self._kv[cache_key]
            return None if cached is None else json.loads(cached)
        row = self.conn.execute(
            "SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
        ).fetchone()
        if self._depth:
            self._kv[cache_key] = None if row is None else row[0]
        return None if row is None else json.loads(row[0])

    def kv_put(self, namespace: str, key: str, value: Any) -> None:
        with self._write():
            text = json.dumps(value, default=str)
            self._exec(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                (namespace, key, text),
            )
            self._kv[(namespace, key)] = text

    def kv_delete(self, namespace: str, key: str) -> None:
        with self._write():
            self._exec("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
            self._kv[(namespace, key)] = None

    def kv_items(self, namespace: str) -> Iterator[tuple[str, Any]]:
        """Every (key, value) of a namespace, by key (reports read the SLA clocks this way)."""
        rows = self.conn.execute("SELECT key, value FROM kv WHERE namespace = ? ORDER BY key", (namespace,))
        for key, value in rows.fetchall():
            yield key, json.loads(value)

    # ------------------------------------------------------------- records
    def get_record(self, object: str, record_id: str) -> Record | None:
        key = (object, record_id)
        buffered = self._buffered("records", key)
        if buffered is not None:
            return _load(Record, buffered)
        if self._depth and key in self._records:
            data = self._records[key]
            return None if data is None else _load(Record, data)
        row = self.conn.execute(
            "SELECT data FROM records WHERE object = ? AND id = ?", (object, record_id)
        ).fetchone()
        if self._depth:
            self._records[key] = None if row is None else row[0]
        return None if row is None else _load(Record, row[0])

    def put_record(self, record: Record) -> None:
        with self._write():
            row = (record.object, record.id, int(record.deleted), ts(record.updated_at), _dump(record))
            self._buffer_put("records", (record.object, record.id), row)
            # Keep the read cache in step: a flush empties the buffer, and a stale cached
            # "absent" from before this write would then hide the record.
            if self._depth:
                self._records[(record.object, record.id)] = row[-1]

    def records_of(self, object: str) -> Iterator[Record]:
        self._flush("records")
        # Materialised first: the engine may write records while iterating.
        rows = self.conn.execute(
            "SELECT data FROM records WHERE object = ? AND deleted = 0 ORDER BY rid", (object,)
        ).fetchall()
        for (data,) in rows:
            yield _load(Record, data)

    def add_timeline(self, entry: TimelineEntry) -> None:
        with self._write():
            self._buffer_append(
                "timeline",
                (entry.seq, entry.object, entry.record_id, ts(entry.at), entry.run_id, _dump(entry)),
            )

    def timeline(self, object: str, record_id: str) -> list[TimelineEntry]:
        self._flush("timeline")
        return self._models(
            TimelineEntry,
            "SELECT data FROM timeline WHERE object = ? AND record_id = ? ORDER BY seq",
            (object, record_id),
        )

    # ------------------------------------------------------------- runs and steps
    def get_run(self, run_id: str) -> Run | None:
        return self._get(Run, "runs", "id", run_id)

    def put_run(self, run: Run) -> None:
        with self._write():
            row = (
                run.id,
                run.flow,
                run.version,
                run.object,
                run.record_id,
                run.status,
                run.parent_run_id,
                ts(run.started_at),
                ts(run.ended_at),
                run.error_class,
                _dump(run),
            )
            self._buffer_put("runs", run.id, row)

    def list_runs(
        self,
        *,
        flow: str | None = None,
        record: tuple[str, str] | None = None,
        statuses: Iterable[str] | None = None,
        parent_run_id: str | None = None,
    ) -> list[Run]:
        self._flush("runs")
        where = _Where()
        where.eq("flow", flow)
        if record is not None:
            where.add("object = ? AND record_id = ?", *record)
        if statuses is not None:
            wanted = list(statuses)
            if not wanted:
                return []
            where.any_of("status", wanted)
        where.eq("parent_run_id", parent_run_id)
        return self._models(Run, f"SELECT data FROM runs{where} ORDER BY n", where.params)

    def put_step_attempt(self, attempt: StepAttempt) -> None:
        with self._write():
            row = (
                attempt.run_id,
                attempt.step,
                attempt.attempt,
                attempt.flow,
                attempt.status,
                attempt.error_class,
                ts(attempt.started_at),
                ts(attempt.ended_at),
                _dump(attempt),
            )
            self._buffer_put("step_attempts", (attempt.run_id, attempt.step, attempt.attempt), row)
            if self.observe:
                self._note(
                    "attempt",
                    AttemptNote(
                        attempt.flow, attempt.step, attempt.status, attempt.started_at, attempt.ended_at
                    ),
                )

    def step_attempts(self, run_id: str) -> list[StepAttempt]:
        self._flush("step_attempts")
        return self._models(StepAttempt, "SELECT data FROM step_attempts WHERE run_id = ? ORDER BY n", (run_id,))

    # ------------------------------------------------------------- tasks
    def get_task(self, task_id: str) -> Task | None:
        return self._get(Task, "tasks", "id", task_id)

    def put_task(self, task: Task) -> None:
        with self._write():
            row = (
                task.id,
                task.kind,
                task.run_id,
                task.step,
                task.assignee,
                task.status,
                ts(task.created_at),
                _dump(task),
            )
            self._buffer_put("tasks", task.id, row)

    def list_tasks(
        self,
        *,
        run_id: str | None = None,
        step: str | None = None,
        assignee: str | None = None,
        open_only: bool = False,
    ) -> list[Task]:
        self._flush("tasks")
        where = _Where()
        where.eq("run_id", run_id)
        where.eq("step", step)
        where.eq("assignee", assignee)
        if open_only:
            where.any_of("status", sorted(OPEN_TASK_STATUSES))
        return self._models(Task, f"SELECT data FROM tasks{where} ORDER BY n", where.params)

    # ------------------------------------------------------------- outbox
    def get_message(self, message_id: str) -> Message | None:
        return self._get(Message, "messages", "id", message_id)

    def put_message(self, message: Message) -> None:
        with self._write():
            row = (
                message.id,
                message.idempotency_key,
                message.channel,
                message.status,
                message.run_id,
                ts(message.created_at),
                ts(message.sent_at),
                _dump(message),
            )
            self._buffer_put("messages", message.id, row)
            if self.observe:
                self._note("message", MessageNote(message.status, message.channel))

    def pending_messages(self, limit: int | None = None) -> list[Message]:
        return self.messages_in_status("pending", limit=limit)

    def messages_in_status(self, status: str, *, limit: int | None = None) -> list[Message]:
        self._flush("messages")
        sql = "SELECT data FROM messages WHERE status = ? ORDER BY n"
        params: list[Any] = [status]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._models(Message, sql, params)

    def list_messages(self, *, run_id: str | None = None) -> list[Message]:
        self._flush("messages")
        if run_id is None:
            return self._models(Message, "SELECT data FROM messages ORDER BY n")
        return self._models(Message, "SELECT data FROM messages WHERE run_id = ? ORDER BY n", (run_id,))

    def claim_messages(self, limit: int, exclude: Iterable[str] = ()) -> list[Message]:
        """Move up to `limit` pending messages to `sending` and return them (the outbox worker's claim).

        Committed before any delivery starts: a message found in `sending` after
        a crash may have reached its provider, so it is re-sent with the same
        idempotency key instead of being sent fresh.
        """
        skip = set(exclude)
        claimed: list[Message] = []
        with self._write():
            for message in self.pending_messages(limit=limit + len(skip)):
                if message.id in skip:
                    continue
                message.status = "sending"
                self.put_message(message)
                claimed.append(message)
                if len(claimed) >= limit:
                    break
        return claimed

    # ------------------------------------------------------------- timers
    def add_timer(self, timer: Timer) -> None:
        self.put_timer(timer)

    def put_timer(self, timer: Timer) -> None:
        with self._write():
            row = (
                timer.id,
                timer.seq,
                timer.kind,
                ts(timer.due_at),
                timer.owner,
                timer.run_id,
                timer.status,
                ts(timer.created_at),
                _dump(timer),
            )
            self._buffer_put("timers", timer.id, row)
            if self.observe:
                self._note("timer", TimerNote(timer.status, timer.due_at))

    def get_timer(self, timer_id: str) -> Timer | None:
        return self._get(Timer, "timers", "id", timer_id)

    def cancel_timers(self, owner: str, kind: str | None = None) -> int:
        sql = (
            "UPDATE timers SET status = 'cancelled', data = json_set(data, '$.status', 'cancelled') "
            "WHERE owner = ? AND status = 'pending'"
        )
        params: list[Any] = [owner]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self._write():
            self._flush("timers")
            return self._exec(sql, params).rowcount

    def due_timers(self, now: dt.datetime, limit: int | None = None) -> list[Timer]:
        self._flush("timers")
        sql = "SELECT data FROM timers WHERE status = 'pending' AND due_at <= ? ORDER BY due_at, seq"
        params: list[Any] = [ts(now)]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self._models(Timer, sql, params)

    def next_due(self) -> dt.datetime | None:
        self._flush("timers")
        row = self.conn.execute("SELECT min(due_at) FROM timers WHERE status = 'pending'").fetchone()
        return parse_ts(row[0]) if row and row[0] else None

    # ------------------------------------------------------------- events and trace
    def get_processed(self, idempotency_key: str) -> ProcessedEvent | None:
        return self._get(ProcessedEvent, "processed_events", "idempotency_key", idempotency_key)

    def put_processed(self, processed: ProcessedEvent) -> None:
        with self._write():
            row = (processed.idempotency_key, processed.event_id, ts(processed.at), _dump(processed))
            self._buffer_put("processed_events", processed.idempotency_key, row)

    def append_trace(self, entry: TraceEntry) -> None:
        with self._write():
            self._buffer_append("trace", (entry.seq, ts(entry.at), entry.kind, entry.run_id, _dump(entry)))
            if self.observe:
                self._note("trace", entry)
            if self.trace_hook is not None:
                self.trace_hook(entry)

    def trace(self, *, run_id: str | None = None, since_seq: int = 0) -> list[TraceEntry]:
        self._flush("trace")
        if run_id is None:
            return self._models(TraceEntry, "SELECT data FROM trace WHERE seq > ? ORDER BY seq", (since_seq,))
        return self._models(
            TraceEntry, "SELECT data FROM trace WHERE run_id = ? AND seq > ? ORDER BY seq", (run_id, since_seq)
        )

    # =================================================================== runner-only
    # ------------------------------------------------------------- the event log
    def log_event(
        self,
        event_id: str,
        received_at: dt.datetime,
        body: dict[str, Any],
        *,
        idempotency_key: str | None,
        duplicate: bool,
    ) -> None:
        with self._write():
            self._buffer_append(
                "events",
                (event_id, ts(received_at), idempotency_key, int(duplicate), json.dumps(body, default=str)),
            )

    def count_events(self) -> int:
        self._flush("events")
        return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])

    # ------------------------------------------------------------- bundles
    def live_bundle_version(self) -> int:
        row = self.conn.execute("SELECT max(version) FROM bundles").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def add_bundle(
        self,
        data: dict[str, Any],
        content_hash: str,
        *,
        expected_version: int,
        meta: dict[str, Any],
        now: dt.datetime,
    ) -> int:
        """Insert the next bundle version if `expected_version` is still live (check and insert in one transaction).

        Raises VersionConflict otherwise. Concurrent applies: BEGIN IMMEDIATE
        serialises writers, so exactly one of two appliers with the same
        expected version wins.
        """
        with self._write():
            live = self.live_bundle_version()
            if live != expected_version:
                raise VersionConflict(expected_version, live)
            version = live + 1
            self._exec(
                "INSERT INTO bundles (version, hash, data, applied_at, meta) VALUES (?, ?, ?, ?, ?)",
                (version, content_hash, json.dumps(data, ensure_ascii=False), ts(now), json.dumps(meta)),
            )
            return version

    def get_bundle(self, version: int, *, with_data: bool = True) -> BundleVersion | None:
        row = self.conn.execute(
            "SELECT version, hash, applied_at, meta"
            + (", data" if with_data else "")
            + " FROM bundles WHERE version = ?",
            (version,),
        ).fetchone()
        return None if row is None else _bundle_version(row)

    def bundle_versions(self) -> list[BundleVersion]:
        rows = self.conn.execute(
            "SELECT version, hash, applied_at, meta FROM bundles ORDER BY version"
        ).fetchall()
        return [_bundle_version(r) for r in rows]

    def inflight(self) -> dict[str, dict[int, int]]:
        """Open (running + waiting) runs per flow and bundle version."""
        self._flush("runs")
        statuses = sorted(OPEN_RUN_STATUSES)
        rows = self.conn.execute(
            f"SELECT flow, version, count(*) FROM runs WHERE status IN ({_marks(len(statuses))}) "
            "GROUP BY flow, version ORDER BY flow, version",
            statuses,
        ).fetchall()
        out: dict[str, dict[int, int]] = {}
        for flow, version, count in rows:
            out.setdefault(flow, {})[int(version)] = int(count)
        return out

    # ------------------------------------------------------------- audit
    def audit(
        self,
        action: str,
        *,
        now: dt.datetime,
        actor: str | None = None,
        role: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self._write():
            self._exec(
                "INSERT INTO audit (at, actor, role, action, target, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (ts(now), actor, role, action, target, json.dumps(detail or {}, default=str)),
            )

    def audit_log(
        self, *, limit: int = 100, action: str | None = None, before_seq: int | None = None
    ) -> list[AuditEntry]:
        where = _Where()
        where.eq("action", action)
        if before_seq is not None:
            where.add("seq < ?", before_seq)
        sql = f"SELECT seq, at, actor, role, action, target, detail FROM audit{where} ORDER BY seq DESC LIMIT ?"
        rows = self.conn.execute(sql, [*where.params, limit]).fetchall()
        return [
            AuditEntry(
                seq=r[0],
                at=parse_ts(r[1]) or dt.datetime.now(UTC),
                actor=r[2],
                role=r[3],
                action=r[4],
                target=r[5],
                detail=json.loads(r[6]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------- tokens
    def add_token(self, token_id: str, name: str, role: str, token_hash: str, now: dt.datetime) -> None:
        with self._write():
            self._exec(
                "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)",
                (token_id, name, role, token_hash, ts(now)),
            )

    def token_by_hash(self, token_hash: str) -> TokenInfo | None:
        row = self.conn.execute(
            "SELECT id, name, role, created_at, revoked_at FROM tokens WHERE hash = ?", (token_hash,)
        ).fetchone()
        return None if row is None else _token_info(row)

    def tokens(self) -> list[TokenInfo]:
        rows = self.conn.execute(
            "SELECT id, name, role, created_at, revoked_at FROM tokens ORDER BY created_at"
        ).fetchall()
        return [_token_info(r) for r in rows]

    def revoke_token(self, token_id: str, now: dt.datetime) -> bool:
        with self._write():
            return (
                self._exec(
                    "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (ts(now), token_id),
                ).rowcount
                > 0
            )

    def count_tokens(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM tokens").fetchone()[0])

    # ------------------------------------------------------------- forwarding record changes to the CRM
    def add_crm_forward(
        self,
        idempotency_key: str,
        object: str,
        record_id: str,
        run_id: str | None,
        payload: dict[str, Any],
        now: dt.datetime,
    ) -> None:
        with self._write():
            self._exec(
                "INSERT INTO crm_outbox (idempotency_key, object, record_id, run_id, status, next_try_at, created_at, "
                "payload) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
                (
                    idempotency_key,
                    object,
                    record_id,
                    run_id,
                    ts(now),
                    ts(now),
                    json.dumps(payload, default=str),
                ),
            )

    def due_crm_forwards(self, now: dt.datetime, limit: int = 50) -> list[CrmForward]:
        rows = self.conn.execute(
            "SELECT n, idempotency_key, object, record_id, run_id, attempts, payload FROM crm_outbox "
            "WHERE status = 'pending' AND next_try_at <= ? ORDER BY n LIMIT ?",
            (ts(now), limit),
        ).fetchall()
        return [
            CrmForward(
                n=r[0],
                idempotency_key=r[1],
                object=r[2],
                record_id=r[3],
                run_id=r[4],
                attempts=r[5],
                payload=json.loads(r[6]),
            )
            for r in rows
        ]

    def next_crm_forward_due(self) -> dt.datetime | None:
        row = self.conn.execute("SELECT min(next_try_at) FROM crm_outbox WHERE status = 'pending'").fetchone()
        return parse_ts(row[0]) if row and row[0] else None

    def finish_crm_forward(
        self,
        n: int,
        *,
        ok: bool,
        now: dt.datetime,
        error: str | None = None,
        retry_at: dt.datetime | None = None,
    ) -> None:
        with self._write():
            if ok:
                self._exec(
                    "UPDATE crm_outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, error = NULL "
                    "WHERE n = ?",
                    (ts(now), n),
                )
            elif retry_at is not None:
                self._exec(
                    "UPDATE crm_outbox SET attempts = attempts + 1, next_try_at = ?, error = ? WHERE n = ?",
                    (ts(retry_at), error, n),
                )
            else:
                self._exec(
                    "UPDATE crm_outbox SET status = 'failed', attempts = attempts + 1, error = ? WHERE n = ?",
                    (error, n),
                )

    def crm_forwards(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT idempotency_key, object, record_id, run_id, status, attempts, error, payload FROM crm_outbox ORDER BY n"
        ).fetchall()
        return [
            {
                "idempotency_key": r[0],
                "object": r[1],
                "record_id": r[2],
                "run_id": r[3],
                "status": r[4],
                "attempts": r[5],
                "error": r[6],
                "payload": json.loads(r[7]),
            }
            for r in rows
        ]

    # ------------------------------------------------------------- API listings
    def query_runs(
        self,
        *,
        flow: str | None = None,
        statuses: Iterable[str] | None = None,
        object: str | None = None,
        record_id: str | None = None,
        since: dt.datetime | None = None,
        before_n: int | None = None,
        limit: int = 50,
    ) -> list[tuple[int, Run]]:
        """Runs newest first, with their row number as a pagination cursor."""
        self._flush("runs")
        where = _Where()
        where.eq("flow", flow)
        if statuses is not None:
            where.any_of("status", statuses)
        where.eq("object", object)
        where.eq("record_id", record_id)
        where.since("started_at", since)
        if before_n is not None:
            where.add("n < ?", before_n)
        sql = f"SELECT n, data FROM runs{where} ORDER BY n DESC LIMIT ?"
        return [(r[0], _load(Run, r[1])) for r in self.conn.execute(sql, [*where.params, limit]).fetchall()]

    def query_tasks(
        self,
        *,
        statuses: Iterable[str] | None = None,
        assignee: str | None = None,
        run_id: str | None = None,
        kind: str | None = None,
        limit: int = 200,
    ) -> list[Task]:
        self._flush("tasks")
        where = _Where()
        if statuses is not None:
            where.any_of("status", statuses)
        where.eq("assignee", assignee)
        where.eq("run_id", run_id)
        where.eq("kind", kind)
        return self._models(Task, f"SELECT data FROM tasks{where} ORDER BY n LIMIT ?", [*where.params, limit])

    def query_messages(
        self,
        *,
        run_id: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[Message]:
        self._flush("messages")
        where = _Where()
        where.eq("run_id", run_id)
        where.eq("channel", channel)
        where.eq("status", status)
        return self._models(
            Message, f"SELECT data FROM messages{where} ORDER BY n DESC LIMIT ?", [*where.params, limit]
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Row counts by status for /v1/metrics and the Prometheus gauges."""
        self._flush()
        out: dict[str, dict[str, int]] = {}
        for table in ("runs", "tasks", "messages", "timers"):
            rows = self.conn.execute(f"SELECT status, count(*) FROM {table} GROUP BY status").fetchall()
            out[table] = {str(s): int(c) for s, c in rows}
        return out

    # ------------------------------------------------------------- statistics (flowctl stats, report failures)
    @staticmethod
    def _filters(
        flow: str | None, since: dt.datetime | None, time_column: str, flow_column: str = "flow"
    ) -> _Where:
        where = _Where()
        where.eq(flow_column, flow)
        where.since(time_column, since)
        return where

    def run_status_counts(
        self, *, flow: str | None = None, since: dt.datetime | None = None
    ) -> list[tuple[str, str, int]]:
        """(flow, status, runs)."""
        self._flush("runs")
        where = self._filters(flow, since, "started_at")
        sql = f"SELECT flow, status, count(*) FROM runs{where} GROUP BY flow, status ORDER BY flow, status"
        return [(r[0], r[1], int(r[2])) for r in self.conn.execute(sql, where.params).fetchall()]

    def run_durations(
        self, *, flow: str | None = None, since: dt.datetime | None = None
    ) -> list[tuple[str, float]]:
        """(flow, seconds from start to end) of every finished run."""
        self._flush("runs")
        where = self._filters(flow, since, "started_at")
        where.add("ended_at IS NOT NULL")
        sql = f"SELECT flow, (julianday(ended_at) - julianday(started_at)) * 86400.0 FROM runs{where}"
        return [(r[0], max(0.0, float(r[1]))) for r in self.conn.execute(sql, where.params).fetchall()]

    def attempt_counts(
        self, *, flow: str | None = None, since: dt.datetime | None = None
    ) -> list[tuple[str, str, str, str | None, int]]:
        """(flow, step, status, error_class, attempts)."""
        self._flush("step_attempts")
        where = self._filters(flow, since, "started_at")
        sql = (
            f"SELECT flow, step, status, error_class, count(*) FROM step_attempts{where} "
            "GROUP BY flow, step, status, error_class ORDER BY flow, step"
        )
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in self.conn.execute(sql, where.params).fetchall()]

    def retried_steps(
        self, *, flow: str | None = None, since: dt.datetime | None = None
    ) -> list[tuple[str, str, int, bool]]:
        """(flow, step, tries, finally succeeded) for every step of a run that failed at least one attempt."""
        self._flush("step_attempts")
        where = self._filters(flow, since, "started_at")
        sql = (
            "SELECT flow, step, max(attempt), max(status = 'succeeded') FROM step_attempts"
            f"{where} GROUP BY run_id, step HAVING sum(status IN ('failed', 'retrying')) > 0"
        )
        return [(r[0], r[1], int(r[2]), bool(r[3])) for r in self.conn.execute(sql, where.params).fetchall()]

    def compensation_tasks(self, *, flow: str | None = None, since: dt.datetime | None = None) -> list[Task]:
        self._flush("tasks")
        where = _Where()
        where.add("kind = 'compensation'")
        where.eq("json_extract(data, '$.flow')", flow)
        where.since("created_at", since)
        return self._models(Task, f"SELECT data FROM tasks{where} ORDER BY n", where.params)

    def message_outcomes(
        self, *, flow: str | None = None, since: dt.datetime | None = None
    ) -> list[tuple[str | None, str, str, str | None, int]]:
        """(flow, channel, status, error_class, messages)."""
        self._flush("messages")
        where = self._filters(flow, since, "created_at", flow_column="json_extract(data, '$.flow')")
        sql = (
            "SELECT json_extract(data, '$.flow'), channel, status, json_extract(data, '$.error_class'), count(*) "
            f"FROM messages{where} GROUP BY 1, 2, 3, 4"
        )
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in self.conn.execute(sql, where.params).fetchall()]

    def crm_forward_counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT status, count(*) FROM crm_outbox GROUP BY status").fetchall()
        return {str(s): int(c) for s, c in rows}

    # ------------------------------------------------------------- retention
    def purge(self, cutoff: dt.datetime) -> dict[str, int]:
        """Delete execution logs older than `cutoff`: finished runs with their steps and trace,
        delivered outbox rows, spent timers, old events and idempotency keys.

        Records, timelines, tasks, bundles and the audit log are business data
        and history, not execution logs: they are kept.
        """
        c = ts(cutoff)
        done = {"sent", "failed"}
        counts: dict[str, int] = {}
        with self._write():
            self._flush()
            old_runs = [
                r[0]
                for r in self.conn.execute(
                    "SELECT id FROM runs WHERE ended_at IS NOT NULL AND ended_at < ?", (c,)
                ).fetchall()
            ]
            counts["runs"] = 0
            counts["step_attempts"] = 0
            for i in range(0, len(old_runs), 500):
                chunk = old_runs[i : i + 500]
                marks = _marks(len(chunk))
                counts["step_attempts"] += self._exec(
                    f"DELETE FROM step_attempts WHERE run_id IN ({marks})", chunk
                ).rowcount
                counts["runs"] += self._exec(f"DELETE FROM runs WHERE id IN ({marks})", chunk).rowcount
            counts["trace"] = self._exec("DELETE FROM trace WHERE at < ?", (c,)).rowcount
            counts["messages"] = self._exec(
                f"DELETE FROM messages WHERE status IN ({_marks(len(done))}) AND created_at < ?",
                [*sorted(done), c],
            ).rowcount
            counts["timers"] = self._exec(
                "DELETE FROM timers WHERE status != 'pending' AND due_at < ?", (c,)
            ).rowcount
            counts["events"] = self._exec("DELETE FROM events WHERE received_at < ?", (c,)).rowcount
            counts["processed_events"] = self._exec(
                "DELETE FROM processed_events WHERE at < ?", (c,)
            ).rowcount
            counts["crm_outbox"] = self._exec(
                "DELETE FROM crm_outbox WHERE status != 'pending' AND created_at < ?", (c,)
            ).rowcount
        return counts

    def table_counts(self) -> dict[str, int]:
        self._flush()
        names = [
            "records",
            "timeline",
            "runs",
            "step_attempts",
            "tasks",
            "messages",
            "timers",
            "processed_events",
            "trace",
            "events",
            "bundles",
            "audit",
            "tokens",
            "crm_outbox",
        ]
        return {n: int(self.conn.execute(f"SELECT count(*) FROM {n}").fetchone()[0]) for n in names}


def open_store(path: Path | str, *, readonly: bool = False) -> SqliteStore:
    return SqliteStore.open(path, readonly=readonly)
