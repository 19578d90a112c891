"""Kafka first, the spool when Kafka is slow or down: a webhook is answered 202 only once
one of them has it.

Order: while the spool holds anything (or a record is on its way into it), every new
webhook joins its end, and the drain task sends the spool in arrival order with one
producer, so a record's webhooks reach its partition in the order they came.

A send that timed out is not cancelled once aiokafka has queued it: it may still be
delivered. Until it settles the drain waits (it is ahead of anything the drain would
send on that partition); if it was delivered, its spooled copy is deleted rather than
sent again behind later webhooks. A send that hangs past `settle_timeout_s` is no
longer waited for: its copy may then arrive twice, which the deterministic event ids
downstream absorb; nothing is ever dropped. One order is not kept: when a webhook's own
send fails after its timeout while a later webhook of the record, sent before the
spooling began, was acknowledged, the spooled copy lands after the later one; the
worker's per-record event set still emits each event once.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ingress.spool import Spooled, SpoolStats, SpoolStore, acked_prefix

log = logging.getLogger(__name__)
T = TypeVar("T")


class Producer(Protocol):
    async def send(self, topic: str, value: bytes, key: bytes) -> "asyncio.Future[Any]": ...


class Stored(Enum):
    KAFKA = "kafka"
    SPOOL = "spool"


def _succeeded(future: "asyncio.Future[Any]") -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


class Forwarder:
    def __init__(
        self,
        producer: Producer,
        directory: Path,
        max_bytes: int,
        ack_timeout_s: float,
        settle_timeout_s: float,
        chunk: int = 100,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._producer = producer
        self._directory = directory
        self._max_bytes = max_bytes
        self._ack_timeout_s = ack_timeout_s
        self._settle_timeout_s = settle_timeout_s
        self._chunk = chunk
        self._max_backoff_s = max_backoff_s
        # One thread: SQLite's connection lives there and appends keep their order.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="spool")
        self._store: SpoolStore | None = None
        self._appending = 0
        # Sends that may still land in Kafka, with when they started.
        self._unsettled: dict[asyncio.Future[Any], float] = {}
        self._settled = asyncio.Event()
        self._wake = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False
        self.on_drained: Callable[[int], None] = _ignore

    async def start(self) -> None:
        self._store = await self._run(SpoolStore, self._directory, self._max_bytes)
        if self._store.stats.depth:
            log.info(
                "spool holds webhooks from before the start; draining them",
                extra={"spool_depth": self._store.stats.depth},
            )
        self._drainer = asyncio.create_task(self._drain_forever(), name="spool-drain")

    async def stop(self) -> None:
        self._closed = True
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)
        if self._store is not None:
            await self._run(self._store.close)
        self._executor.shutdown(wait=True)

    @property
    def store(self) -> SpoolStore:
        if self._store is None:
            raise RuntimeError("the forwarder is not started")
        return self._store

    @property
    def stats(self) -> SpoolStats:
        return self.store.stats

    @property
    def queued(self) -> int:
        """Records in the spool or on their way into it."""
        return self.stats.depth + self._appending

    def has_room(self, size: int) -> bool:
        return self.stats.size + size <= self._max_bytes

    async def deliver(self, topic: str, key: bytes, value: bytes) -> Stored:
        """Returns once Kafka or the spool has the record; SpoolFull, or an OSError or
        sqlite3.Error from the disk, when neither can take it."""
        if self.queued:
            return await self._spool(topic, key, value, None)
        started = time.monotonic()
        future = await self._queue(topic, key, value, self._ack_timeout_s)
        if future is None:
            return await self._spool(topic, key, value, None)
        self._unsettled[future] = started
        remaining = self._ack_timeout_s - (time.monotonic() - started)
        await asyncio.wait({future}, timeout=max(remaining, 0))
        if _succeeded(future):
            self._settle(future)
            return Stored.KAFKA
        if future.done():
            # Kafka refused it: nothing of it will arrive later.
            self._settle(future)
            return await self._spool(topic, key, value, None)
        return await self._spool(topic, key, value, future)

    async def _queue(
        self, topic: str, key: bytes, value: bytes, timeout: float
    ) -> "asyncio.Future[Any] | None":
        """aiokafka's future for the record, or None when it could not be queued in time
        (waiting for metadata or buffer space): then it was cancelled, and is never sent."""
        try:
            # Usually returns at once; a wait here is for metadata or buffer space.
            async with asyncio.timeout(timeout):
                future: asyncio.Future[Any] = await self._producer.send(topic, value=value, key=key)
        except Exception:  # noqa: BLE001 - timed out or refused: the spool takes it
            return None
        return future

    async def _spool(
        self, topic: str, key: bytes, value: bytes, in_flight: "asyncio.Future[Any] | None"
    ) -> Stored:
        store = self.store
        self._appending += 1
        try:
            seq = await self._run(store.append, topic, key, value)
        except BaseException:
            if in_flight is not None:
                # The spool could not take it; the 503 tells Zoho, the send may still land.
                self._settle(in_flight)
            raise
        finally:
            self._appending -= 1
        self._wake.set()
        if in_flight is not None:
            if in_flight.done():
                self._settle_late(seq, in_flight)
            else:
                in_flight.add_done_callback(partial(self._settle_late, seq))
        return Stored.SPOOL

    def _settle_late(self, seq: int, future: "asyncio.Future[Any]") -> None:
        """The timed-out send finished. Delivered: its copy leaves the spool, submitted to
        the spool's thread now so it runs before the drain's next read."""
        if _succeeded(future) and not self._closed:
            asyncio.get_running_loop().run_in_executor(
                self._executor, self.store.delete, [seq]
            ).add_done_callback(_log_failure)
        self._settle(future)

    def _settle(self, future: "asyncio.Future[Any]") -> None:
        self._unsettled.pop(future, None)
        if not future.cancelled():
            future.exception()  # retrieved: a failure here is handled by the spool
        self._settled.set()

    async def _drain_forever(self) -> None:
        failures = 0
        while True:
            if not self.queued:
                self._wake.clear()
                if not self.queued:
                    await self._wake.wait()
                continue
            try:
                complete = await self._drain_once()
            except Exception:  # noqa: BLE001 - the drain must outlive a failing disk or send
                log.exception("draining the spool failed; retrying", extra=self._log_extra())
                complete = False
            if not complete:
                failures += 1
                await asyncio.sleep(min(0.25 * 2**failures, self._max_backoff_s))
            elif failures:
                log.info("kafka takes the spool again", extra=self._log_extra())
                failures = 0

    async def _drain_once(self) -> bool:
        """Sends the spool's head; False when Kafka did not take all of it."""
        await self._wait_for_unsettled_sends()
        batch = await self._run(self.store.head, self._chunk)
        if not batch:
            # Only appends in progress: their end wakes us.
            self._wake.clear()
            if self._appending:
                await self._wake.wait()
            return True
        sent = await self._send(batch)
        if sent:
            await self._run(self.store.delete, [record.seq for record in batch[:sent]])
            self.on_drained(sent)
        return sent == len(batch)

    async def _wait_for_unsettled_sends(self) -> None:
        while True:
            now = time.monotonic()
            waiting = [t for t in self._unsettled.values() if now - t < self._settle_timeout_s]
            if not waiting:
                return
            self._settled.clear()
            try:
                await asyncio.wait_for(
                    self._settled.wait(), self._settle_timeout_s - (now - min(waiting))
                )
            except TimeoutError:
                pass

    async def _send(self, batch: list[Spooled]) -> int:
        """How many records from the batch's start Kafka acknowledged."""
        futures: list[asyncio.Future[Any]] = []
        for record in batch:
            future = await self._queue(record.topic, record.key, record.value, self._ack_timeout_s)
            if future is None:
                break
            futures.append(future)
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        errors: list[BaseException | None] = [
            outcome if isinstance(outcome, BaseException) else None for outcome in outcomes
        ]
        sent = acked_prefix(errors)
        if sent < len(batch):
            first = next((error for error in errors if error is not None), None)
            log.warning(
                "kafka did not take the spooled webhooks; retrying",
                extra=self._log_extra() | {"error": type(first).__name__ if first else "send"},
            )
        return sent

    def _log_extra(self) -> dict[str, Any]:
        stats = self.stats
        return {"spool_depth": stats.depth, "spool_bytes": stats.size}

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)


def _log_failure(future: "asyncio.Future[None]") -> None:
    if not future.cancelled() and future.exception() is not None:
        # The copy stays and is sent again: a duplicate, never a loss.
        log.warning("could not delete a delivered webhook from the spool")


def _ignore(count: int) -> None:
    """No one counts the drained webhooks."""
