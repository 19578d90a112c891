"""Forgets the state of records no webhook touched for `STATE_RETENTION_DAYS`.

Each worker sweeps the table partitions it is the active owner of, on a timer: every
expired key is deleted locally and a tombstone goes to the changelog, so the compacted
changelog drops it too and a recovery never brings it back. RocksDB's own TTL would
not do: it ages entries by their local write time, leaves the changelog untouched (a
recovery on another worker restores them) and cannot read last_seen_at.

The memory store keeps no partition per key, so it is not swept: it is for tests and
development, and is rebuilt from the changelog at every start anyway."""

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP

from streams.app import app, settings
from streams.decisions.expiry import cutoff, expired
from streams.decisions.status import RecordState
from streams.tables import record_states

log = logging.getLogger(__name__)
YIELD_EVERY = 2000  # keys read between giving the agents the event loop back


async def expire_record_states() -> None:
    # TableManagerT does not declare the recovery it has.
    if app.rebalancing or cast(Any, app.tables).recovery.in_recovery:
        return  # partitions are moving: the next round sweeps what this one would have
    deleted = await sweep(record_states, cutoff(datetime.now(UTC), settings.state_retention_days))
    if deleted:
        log.info("expired record states deleted", extra={"deleted": deleted})


app.timer(interval=settings.state_sweep_interval_s)(expire_record_states)


async def sweep(table: Any, before: datetime) -> int:
    store = table.data
    if not isinstance(store, RocksDBStore):
        return 0
    changelog = table.changelog_topic_name
    actives = app.assignor.assigned_actives()
    deleted = 0
    # Faust's RocksDB store keeps one database per partition; the key says no partition.
    for partition, db in list(store._dbs.items()):
        if TP(changelog, partition) not in actives:
            continue
        keys = []
        # The iterator reads a snapshot: writes made while the sweep yields do not
        # disturb it.
        for count, (key, value) in enumerate(db.items()):
            if key != store.offset_key and _is_expired(value, before):
                keys.append(key)
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        for key in keys:
            # Looked at again without yielding: a webhook may have touched it meanwhile.
            value = db.get(key)
            if value is None or not _is_expired(value, before):
                continue
            db.delete(key)
            table.send_changelog(partition, key, None, key_serializer="raw", value_serializer="raw")
            deleted += 1
            if deleted % YIELD_EVERY == 0:
                await asyncio.sleep(0)
    return deleted


def _is_expired(value: bytes, before: datetime) -> bool:
    try:
        state = RecordState.from_json(orjson.loads(value))
    except (ValueError, TypeError, AttributeError):
        return False  # not ours to judge; kept
    return expired(state, before)
