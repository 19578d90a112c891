"""Sends that return only once Kafka has confirmed the record."""

import asyncio
import itertools
import logging

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
