"""Sends that return only once Kafka has confirmed the record."""

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import faust

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


async def send_confirmed(topic: faust.TopicT, key: bytes | None, value: bytes) -> None:
    """Retries until Kafka takes the record: the caller's event must not be acked before."""
    for attempt in itertools.count():
        try:
            await (await topic.send(key=key, value=value))
            return
        except Exception as error:  # noqa: BLE001 - any failure means not yet written
            delay = min(MAX_BACKOFF_S, 0.5 * 2**attempt)
            log.warning(
                "send not confirmed; retrying",
                extra={"topic": topic.get_topic_name(), "error": repr(error), "retry_in_s": delay},
            )
            await asyncio.sleep(delay)


async def send_all_confirmed(records: Sequence[tuple[faust.TopicT, bytes | None, bytes]]) -> None:
    """Sends every record, then waits for Kafka's acknowledgements together: one round
    trip for the lot instead of one per record. A record Kafka did not take is sent
    again on its own until it is; only then may the callers' events be confirmed."""
    pending: list[Awaitable[Any]] = []
    try:
        for topic, key, value in records:
            pending.append(await topic.send(key=key, value=value))
    except Exception as error:  # noqa: BLE001 - the rest goes out one by one below
        log.warning("send not queued; sending one by one", extra={"error": repr(error)})
    results = await asyncio.gather(*pending, return_exceptions=True)
    taken = [not isinstance(result, BaseException) for result in results]
    taken += [False] * (len(records) - len(taken))  # never queued: as good as failed
    for (topic, key, value), done in zip(records, taken, strict=True):
        if not done:
            await send_confirmed(topic, key, value)
