"""The ingress's local spool: webhooks Kafka did not acknowledge in time, kept on disk.

SQLite in WAL mode with synchronous=FULL: `append` returns only after the commit's fsync,
and SQLite's checksummed WAL frames make a write torn by a crash read as never written,
never as a damaged record. The store is synchronous and single-threaded on purpose; the
forwarder calls it from one executor thread so its blocking never stalls the event loop.
"""

import fcntl
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from schemas.envelope import source_of_key

DATABASE = "spool.sqlite3"
LOCK = "spool.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    spooled_at REAL NOT NULL
)
"""


class SpoolFull(Exception):
    """The record does not fit under the spool's size cap."""


class SpoolInUse(RuntimeError):
    """Another process holds the spool directory."""


@dataclass(frozen=True)
class Spooled:
    seq: int
    topic: str
    key: bytes
    value: bytes
    spooled_at: float

    @property
    def size(self) -> int:
        return record_size(self.key, self.value)


@dataclass(frozen=True)
class SpoolStats:
    depth: int
    size: int
    oldest_at: float | None
    # Records per source, from the `{source_id}:{record_id}` key.
    by_source: Mapping[str, int] = field(default_factory=dict)

    def oldest_age_s(self, now: float) -> float:
        return 0.0 if self.oldest_at is None else max(now - self.oldest_at, 0.0)


def count_sources(
    counts: Mapping[str, int], keys: Iterable[bytes], sign: int = 1
) -> dict[str, int]:
    """`counts` with each key's source counted once more (or, with sign -1, once less)."""
    changed = Counter(counts)
    for key in keys:
        # A key that names no source is counted under the whole key.
        changed[source_of_key(key) or key.decode("utf-8", "replace")] += sign
    return {source: n for source, n in changed.items() if n > 0}


def record_size(key: bytes, value: bytes) -> int:
    """What a record counts against the cap: its payload, not SQLite's page overhead."""
    return len(key) + len(value)


def fits(current_size: int, record: int, cap: int) -> bool:
    return current_size + record <= cap


def acked_prefix(outcomes: Sequence[BaseException | None]) -> int:
    """How many records, from the first, Kafka acknowledged without a gap: only those may
    leave the spool, so a failure keeps itself and everything after it in order."""
    for index, outcome in enumerate(outcomes):
        if outcome is not None:
            return index
    return len(outcomes)


class SpoolStore:
    """One directory, one process: a lock file refuses a second ingress on the same spool."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise SpoolInUse(
                f"spool directory {directory} is in use by another ingress: "
                "each replica needs a directory of its own"
            ) from None
        self.max_bytes = max_bytes
        self._db = sqlite3.connect(directory / DATABASE, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        depth, size, oldest = self._db.execute(
            "SELECT count(*), coalesce(sum(length(key) + length(value)), 0), min(spooled_at)"
            " FROM spooled"
        ).fetchone()
        # Keys only, once at start: afterwards appends and deletes keep the counts.
        keys = (bytes(key) for (key,) in self._db.execute("SELECT key FROM spooled"))
        self._stats = SpoolStats(depth, size, oldest, count_sources({}, keys))

    @property
    def stats(self) -> SpoolStats:
        return self._stats

    def append(self, topic: str, key: bytes, value: bytes, now: float | None = None) -> int:
        """Stores one record durably and returns its sequence number; SpoolFull if it
        does not fit."""
        size = record_size(key, value)
        if not fits(self._stats.size, size, self.max_bytes):
            raise SpoolFull(
                f"spool holds {self._stats.size} of {self.max_bytes} bytes; "
                f"a record of {size} does not fit"
            )
        spooled_at = time.time() if now is None else now
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO spooled (topic, key, value, spooled_at) VALUES (?, ?, ?, ?)",
                (topic, key, value, spooled_at),
            )
        seq = cursor.lastrowid
        if seq is None:
            raise sqlite3.DatabaseError("the spool's insert returned no row id")
        oldest = self._stats.oldest_at if self._stats.depth else spooled_at
        self._stats = SpoolStats(
            self._stats.depth + 1,
            self._stats.size + size,
            oldest,
            count_sources(self._stats.by_source, [key]),
        )
        return seq

    def head(self, limit: int) -> list[Spooled]:
        """The oldest records, in arrival order."""
        rows = self._db.execute(
            "SELECT seq, topic, key, value, spooled_at FROM spooled ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            Spooled(seq, topic, bytes(key), bytes(value), at) for seq, topic, key, value, at in rows
        ]

    def delete(self, seqs: Sequence[int]) -> None:
        """Removes records Kafka acknowledged (or that were delivered by another send)."""
        if not seqs:
            return
        # Only "?" placeholders are formatted into the statements below.
        marks = ",".join("?" * len(seqs))
        with self._transaction():
            where = f"WHERE seq IN ({marks})"
            sizes = "SELECT key, length(key) + length(value) FROM spooled "
            leaving = self._db.execute(sizes + where, tuple(seqs)).fetchall()
            self._db.execute("DELETE FROM spooled " + where, tuple(seqs))  # noqa: S608 - placeholders only
            first = self._db.execute(
                "SELECT spooled_at FROM spooled ORDER BY seq LIMIT 1"
            ).fetchone()
        self._stats = SpoolStats(
            self._stats.depth - len(leaving),
            self._stats.size - sum(size for _, size in leaving),
            first[0] if first else None,
            count_sources(self._stats.by_source, (bytes(key) for key, _ in leaving), -1),
        )

    def close(self) -> None:
        self._db.close()
        os.close(self._lock)

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on error (the connection is in autocommit)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
