"""Delivery of conversion batches to the CDP's HTTP API."""

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from schemas.conversion import ConversionEvent
from schemas.settings import Settings
from streams.decisions.delivery import Outcome, classify, idempotency_key, split
from streams.decisions.retry import backoff_seconds

log = logging.getLogger(__name__)
RESPONSE_KEPT_CHARS = 2000


@dataclass(frozen=True)
class CdpAnswer:
    status: int | None  # None: no answer (timeout, connection refused)
    body: str = ""
    retry_after: str | None = None


class CdpClient:
    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self._session = session
        self._url = settings.cdp_url
        self._token = settings.cdp_token.get_secret_value()
        self._timeout = aiohttp.ClientTimeout(total=settings.cdp_timeout_s)

    async def post(self, events: Sequence[ConversionEvent]) -> CdpAnswer:
        body = '{"events": [' + ",".join(e.model_dump_json() for e in events) + "]}"
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key(e.event_id for e in events),
        }
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with self._session.post(
                self._url, data=body.encode(), headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text(errors="replace")
                return CdpAnswer(
                    response.status, text[:RESPONSE_KEPT_CHARS], response.headers.get("Retry-After")
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("CDP did not answer", extra={"error": type(error).__name__})
            return CdpAnswer(None, type(error).__name__)


Post = Callable[[Sequence[ConversionEvent]], Awaitable[CdpAnswer]]
Reject = Callable[[ConversionEvent, CdpAnswer], Awaitable[None]]
Accepted = Callable[[Sequence[ConversionEvent], CdpAnswer], Awaitable[None]]


async def deliver(
    events: Sequence[ConversionEvent],
    post: Post,
    reject: Reject,
    *,
    max_backoff_s: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    accepted: Accepted | None = None,
) -> None:
    """Returns once every event is delivered or rejected for good by the CDP itself.

    Retries in place for as long as the CDP is unavailable; on a client error the batch
    is halved until the event the CDP refuses stands alone.
    """
    pending = [list(events)] if events else []
    while pending:
        batch = pending.pop(0)
        for attempt in itertools.count():
            try:
                answer = await post(batch)
            except Exception as error:  # noqa: BLE001 - a failed post is retried, never dropped
                log.exception("posting to the CDP failed", extra={"error": repr(error)})
                answer = CdpAnswer(None, type(error).__name__)
            outcome = classify(answer.status, len(batch))
            if outcome is Outcome.DELIVERED:
                if accepted is not None:
                    await accepted(batch, answer)
                break
            if outcome is Outcome.SPLIT:
                pending[0:0] = split(batch)
                break
            if outcome is Outcome.REJECT:
                await reject(batch[0], answer)
                break
            delay = backoff_seconds(
                attempt,
                base=0.5,
                cap=max_backoff_s,
                retry_after=answer.retry_after,
                now=datetime.now(UTC),
                random=random.random,
            )
            log.warning(
                "CDP unavailable; retrying batch",
                extra={"status": answer.status, "events": len(batch), "retry_in_s": delay},
            )
            await sleep(delay)
