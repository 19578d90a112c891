"""The Faust table of record states, kept in the worker's store and its changelog topic."""

import weakref
from typing import Any

from faust import streams as faust_streams
from faust.types import EventT

from streams.app import app, settings

# Last status and emitted events per record; keyed like the webhook topics, so each
# record's state lives in the partition its webhooks arrive on.
record_states = app.Table(
    "record-states",
    default=None,
    partitions=settings.topic_partitions,
    # No key or value type: Faust then stores plain JSON and recovers it as such.
    # Faust's RocksDB defaults (a 2 GiB block cache and 3 x 64 MiB write buffers per
    # partition) would let a million records fill the worker's memory.
    options={
        "block_cache_size": settings.worker_store_cache_mib * 1024**2,
        "write_buffer_size": 16 * 1024**2,
        "max_write_buffer_number": 2,
    }
    if settings.worker_store == "rocksdb"
    else None,
)


class in_event:  # noqa: N801 - named and used like a function: `with in_event(event):`
    """Table reads and writes in `event`'s partition (its RocksDB and changelog
    partition). Faust takes the partition from the current event, which an agent taking
    batches does not have: its events arrive in another task. A class rather than a
    generator context manager: it is entered twice for most webhooks."""

    __slots__ = ("_event", "_token")

    def __init__(self, event: EventT[Any]) -> None:
        self._event = weakref.ref(event)

    def __enter__(self) -> None:
        self._token = faust_streams._current_event.set(self._event)  # noqa: SLF001 - the variable Faust's current_event() reads

    def __exit__(self, *_exc: object) -> None:
        faust_streams._current_event.reset(self._token)  # noqa: SLF001


def stored_state(key: str) -> Any:
    """The stored value under `key`, None if there is none. One store read: the table's
    own `get` asks the store whether the key is there, then reads it (two RocksDB reads)."""
    return record_states.data.get(key)
