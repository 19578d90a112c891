"""The Faust table of record states, kept in the worker's store and its changelog topic."""

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from faust import Table
from faust import streams as faust_streams
from faust.types import TP, EventT

from streams.app import app, settings
from streams.send import Record, send_all_confirmed

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


async def write_states(changes: Iterable[tuple[EventT[Any], str, Any]]) -> None:
    """Writes each (event, key, value) to the table: to the changelog first, every record
    confirmed together, then to the store as Faust applies changelog records when it
    recovers: one write batch and one persisted offset per partition. The table's own
    `table[key] = value` sends, writes and persists offsets record by record, which
    cost the worker more than deciding the webhook. A crash between the changelog and the
    store leaves the store behind its persisted offset: the next start reads the rest
    back from the changelog."""
    dumps_key, dumps_value = app.serializers.dumps_key, app.serializers.dumps_value
    table = cast(Table[Any, Any], record_states)
    store = table.data
    changelog = table.changelog_topic
    written = [
        (
            key,
            value,
            Record(
                changelog,
                dumps_key(table.key_type, key, serializer=table.key_serializer),
                dumps_value(table.value_type, value, serializer=table.value_serializer),
                event.message.partition,
            ),
        )
        for event, key, value in changes
    ]
    if not written:
        return
    metadata = await send_all_confirmed([record for _, _, record in written])
    confirmed = [
        _Confirmed(
            key, value, _Message(record.key, record.value, sent.topic_partition, sent.offset)
        )
        for (key, value, record), sent in zip(written, metadata, strict=True)
    ]
    store.apply_changelog_batch(
        cast(list[EventT[Any]], confirmed),  # the attributes the store reads
        to_key=table._to_key,  # noqa: SLF001 - what Faust's own recovery passes
        to_value=table._to_value,  # noqa: SLF001
    )


@dataclass(frozen=True, slots=True)
class _Message:
    key: bytes | None
    value: bytes | None
    tp: TP
    offset: int

    @property
    def partition(self) -> int:
        return self.tp.partition


@dataclass(frozen=True, slots=True)
class _Confirmed:
    """A changelog record Kafka confirmed, shaped like the events of Faust's recovery:
    the decoded key and value, and the message as written."""

    key: str
    value: Any
    message: _Message
