"""Kafka first, the spool when Kafka is slow: order and no loss, with a scripted producer.

The producer stands in for one partition: what it acknowledged, in the order `send` was
called, is what the topic would hold."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from ingress.forwarder import Forwarder, Stored
from ingress.spool import SpoolFull

ACK_TIMEOUT_S = 0.1


class ScriptedKafka:
    """`mode` decides what happens to the next send: ack, fail, hold (acked or failed
    later by the test), or block (never queued: aiokafka waiting for metadata)."""

    def __init__(self) -> None:
        self.mode = "ack"
        self.sent: list[tuple[bytes, asyncio.Future[Any]]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> "asyncio.Future[Any]":  # noqa: ARG002 - aiokafka's signature
        if self.mode == "block":
            await asyncio.Event().wait()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((value, future))
        if self.mode == "ack":
            future.set_result(None)
        elif self.mode == "fail":
            future.set_exception(KafkaTimeoutError())
        return future

    @property
    def topic(self) -> list[bytes]:
        return [
            value
            for value, future in self.sent
            if future.done() and not future.cancelled() and future.exception() is None
        ]

    def held(self, value: bytes) -> "asyncio.Future[Any]":
        [future] = [f for v, f in self.sent if v == value and not f.done()]
        return future


async def until(condition: Callable[[], bool], what: str, timeout: float = 5) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def forwarder(
    kafka: ScriptedKafka, directory: Path, settle_timeout_s: float = 5, max_bytes: int = 10_000
) -> Forwarder:
    return Forwarder(
        kafka,
        directory,
        max_bytes=max_bytes,
        ack_timeout_s=ACK_TIMEOUT_S,
        settle_timeout_s=settle_timeout_s,
        max_backoff_s=0.05,
    )


@pytest.fixture
async def kafka() -> ScriptedKafka:
    return ScriptedKafka()


@pytest.fixture
async def running(kafka: ScriptedKafka, tmp_path: Path) -> AsyncIterator[Forwarder]:
    started = forwarder(kafka, tmp_path)
    await started.start()
    yield started
    await started.stop()


def deliver(running: Forwarder, value: bytes) -> Awaitable[Stored]:
    return running.deliver("raw", b"shop:1", value)


async def test_an_acknowledged_webhook_never_touches_the_spool(
    kafka: ScriptedKafka, running: Forwarder
) -> None:
    assert await deliver(running, b"A") is Stored.KAFKA
    assert kafka.topic == [b"A"] and running.stats.depth == 0


async def test_while_kafka_is_down_webhooks_queue_behind_each_other_and_drain_in_order(
    kafka: ScriptedKafka, running: Forwarder
) -> None:
    kafka.mode = "hold"
    assert await deliver(running, b"A") is Stored.SPOOL
    kafka.mode = "ack"
    # Kafka answers again, but B must not overtake A: it joins the spool.
    assert await deliver(running, b"B") is Stored.SPOOL
    assert await deliver(running, b"C") is Stored.SPOOL
    assert [value for value, _ in kafka.sent] == [b"A"]

    kafka.held(b"A").set_exception(KafkaTimeoutError())
    await until(lambda: running.queued == 0, "the spool to drain")
    assert kafka.topic == [b"A", b"B", b"C"]
    # Empty again: the next webhook goes straight to Kafka.
    assert await deliver(running, b"D") is Stored.KAFKA


async def test_a_timed_out_send_that_lands_later_is_not_sent_again(
    kafka: ScriptedKafka, running: Forwarder
) -> None:
    kafka.mode = "hold"
    assert await deliver(running, b"A") is Stored.SPOOL
    kafka.mode = "ack"
    assert await deliver(running, b"B") is Stored.SPOOL
    kafka.held(b"A").set_result(None)
    await until(lambda: running.queued == 0, "the spool to drain")
    assert kafka.topic == [b"A", b"B"]


async def race_a_late_ack_against_a_newer_webhook(
    kafka: ScriptedKafka, running: Forwarder
) -> list[bytes]:
    """A's send hangs; B, sent while A is still within its timeout, is acknowledged; A is
    spooled, and its own send lands after all."""
    kafka.mode = "hold"
    a = asyncio.ensure_future(deliver(running, b"A"))
    await until(lambda: len(kafka.sent) == 1, "A to be sent")
    kafka.mode = "ack"
    assert await deliver(running, b"B") is Stored.KAFKA
    assert await a is Stored.SPOOL
    # Let the drain act on what it knows before A's send lands.
    await asyncio.sleep(ACK_TIMEOUT_S * 3)
    kafka.held(b"A").set_result(None)
    await until(lambda: running.queued == 0, "the spool to drain")
    return kafka.topic


async def test_a_spooled_copy_never_lands_behind_a_newer_webhook(
    kafka: ScriptedKafka, running: Forwarder
) -> None:
    assert await race_a_late_ack_against_a_newer_webhook(kafka, running) == [b"A", b"B"]


async def test_control_a_drain_that_does_not_wait_for_sends_in_flight_reorders(
    kafka: ScriptedKafka, tmp_path: Path
) -> None:
    hasty = forwarder(kafka, tmp_path, settle_timeout_s=0)
    await hasty.start()
    try:
        topic = await race_a_late_ack_against_a_newer_webhook(kafka, hasty)
    finally:
        await hasty.stop()
    assert topic == [b"A", b"B", b"A"]  # the record's older webhook last


async def test_a_send_that_never_got_queued_is_sent_once_from_the_spool(
    kafka: ScriptedKafka, running: Forwarder
) -> None:
    kafka.mode = "block"
    assert await deliver(running, b"A") is Stored.SPOOL
    kafka.mode = "ack"
    await until(lambda: running.queued == 0, "the spool to drain")
    assert kafka.topic == [b"A"] and len(kafka.sent) == 1


async def test_a_partly_failed_drain_resends_from_the_first_failure(
    kafka: ScriptedKafka, running: Forwarder
) -> None:
    kafka.mode = "block"
    for value in (b"A", b"B", b"C"):
        assert await deliver(running, value) is Stored.SPOOL
    calls = 0

    async def ack_fail_ack(topic: str, value: bytes, key: bytes) -> "asyncio.Future[Any]":
        nonlocal calls
        calls += 1
        kafka.mode = "fail" if calls == 2 else "ack"
        return await ScriptedKafka.send(kafka, topic, value, key)

    kafka.send = ack_fail_ack  # type: ignore[method-assign]
    await until(lambda: running.queued == 0, "the spool to drain")
    # C was acknowledged before B's retry: it is sent again after it.
    assert kafka.topic == [b"A", b"C", b"B", b"C"]
    assert kafka.topic[-2:] == [b"B", b"C"]


async def test_the_spool_is_drained_after_a_restart(kafka: ScriptedKafka, tmp_path: Path) -> None:
    first = forwarder(kafka, tmp_path)
    await first.start()
    kafka.mode = "block"
    for value in (b"A", b"B"):
        assert await deliver(first, value) is Stored.SPOOL
    await first.stop()
    assert kafka.topic == []

    kafka.mode = "ack"
    second = forwarder(kafka, tmp_path)
    await second.start()
    try:
        await until(lambda: second.queued == 0, "the spool to drain")
    finally:
        await second.stop()
    assert kafka.topic == [b"A", b"B"]


async def test_only_a_full_spool_refuses(kafka: ScriptedKafka, tmp_path: Path) -> None:
    small = forwarder(kafka, tmp_path, max_bytes=20)
    await small.start()
    try:
        kafka.mode = "block"
        assert await deliver(small, b"0123456789") is Stored.SPOOL  # 16 bytes with the key
        with pytest.raises(SpoolFull):
            await deliver(small, b"0123456789")
        kafka.mode = "ack"
        await until(lambda: small.queued == 0, "the spool to drain")
        assert await deliver(small, b"0123456789") is Stored.KAFKA
    finally:
        await small.stop()


async def test_the_drain_outlives_a_failing_disk(
    kafka: ScriptedKafka, running: Forwarder, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka.mode = "block"
    assert await deliver(running, b"A") is Stored.SPOOL
    head = running.store.head
    failures = []

    def failing_once(limit: int) -> list[Any]:
        if not failures:
            failures.append(limit)
            raise OSError("disk I/O error")
        return head(limit)

    monkeypatch.setattr(running.store, "head", failing_once)
    kafka.mode = "ack"
    await until(lambda: running.queued == 0, "the spool to drain")
    assert failures and kafka.topic == [b"A"]
