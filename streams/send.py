"""Sends that return only once Kafka has confirmed the record."""

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple

import faust
from faust.types import ProducerT

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


class Record(NamedTuple):
    topic: faust.TopicT
    key: bytes | None
    value: bytes | None  # None: a tombstone
    partition: int | None = None  # None: the topic's partitioner chooses by key


async def queue(record: Record) -> Awaitable[Any]:
    """Kafka's acknowledgement of the record, once the producer has queued it.

    Straight to the app's producer: the records are bytes already, and Topic.send's
    per-message machinery (serialisers that pass bytes through, Faust's send sensors, the
    future it wraps around the producer's) cost more than the send itself. The record
    goes out as Topic.send would send it: same topic, key, value and partition, Kafka's
    time, no headers."""
    topic, key, value, partition = record
    producer: ProducerT = await topic.app.maybe_start_producer()
    return await producer.send(topic.get_topic_name(), key, value, partition, None, None)


async def send_confirmed(record: Record) -> Any:
    """Retries until Kafka takes the record, and returns its metadata (partition and
    offset): the caller's event must not be acked before."""
    attempt = 0
    while True:
        try:
            return await (await queue(record))
        except Exception as error:  # noqa: BLE001 - any failure means not yet written
            delay = min(MAX_BACKOFF_S, 0.5 * 2**attempt)
            attempt += 1
            log.warning(
                "send not confirmed; retrying",
                extra={
                    "topic": record.topic.get_topic_name(),
                    "error": repr(error),
                    "retry_in_s": delay,
                },
            )
            await asyncio.sleep(delay)


async def send_all_confirmed(records: Sequence[Record]) -> list[Any]:
    """Sends every record, then waits for Kafka's acknowledgements together: one round
    trip for the lot instead of one per record. A record Kafka did not take is sent
    again on its own until it is; only then may the callers' events be confirmed.
    Returns each record's metadata, in the records' order."""
    pending: list[Awaitable[Any]] = []
    try:
        for record in records:
            pending.append(await queue(record))
    except Exception as error:  # noqa: BLE001 - the rest goes out one by one below
        log.warning("send not queued; sending one by one", extra={"error": repr(error)})
    results: list[Any] = await asyncio.gather(*pending, return_exceptions=True)
    results += [None] * (len(records) - len(results))  # never queued: as good as failed
    for index, (record, result) in enumerate(zip(records, results, strict=True)):
        if index >= len(pending) or isinstance(result, BaseException):
            results[index] = await send_confirmed(record)
    return results
