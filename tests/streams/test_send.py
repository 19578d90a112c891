"""Sends confirmed together: every record Kafka did not take is sent again before the
call returns, whether its acknowledgement failed or it was never queued."""

import asyncio
from typing import Any, cast

import pytest

from streams import send
from streams.send import Record, send_all_confirmed


class FlakyTopic:
    """Takes records through its app's producer; the ones named in `fail_ack` fail their
    first acknowledgement and the send after `refuse_after` sends raises before queuing."""

    def __init__(self, fail_ack: frozenset[bytes] = frozenset(), refuse_after: int | None = None):
        self.fail_ack = set(fail_ack)
        self.refuse_after = refuse_after
        self.calls = 0
        self.written: list[bytes] = []
        self.app = self  # the topic's app, whose producer it also is

    def get_topic_name(self) -> str:
        return "flaky"

    async def maybe_start_producer(self) -> "FlakyTopic":
        return self

    async def send(  # noqa: PLR0913 - the producer's signature
        self,
        topic: str,
        key: bytes | None,  # noqa: ARG002
        value: bytes,
        partition: int | None,  # noqa: ARG002
        timestamp: float | None,  # noqa: ARG002
        headers: object,  # noqa: ARG002
    ) -> "asyncio.Future[None]":
        assert topic == "flaky"
        self.calls += 1
        if self.refuse_after is not None and self.calls == self.refuse_after + 1:
            raise RuntimeError("producer buffer full")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if value in self.fail_ack:
            self.fail_ack.discard(value)
            future.set_exception(RuntimeError("not acknowledged"))
        else:
            self.written.append(value)
            future.set_result(None)
        return future


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(send.asyncio, "sleep", no_sleep)


def records(topic: FlakyTopic, count: int) -> list[Record]:
    return [Record(cast(Any, topic), None, f"r{i}".encode()) for i in range(count)]


async def test_all_acknowledged_in_one_go() -> None:
    topic = FlakyTopic()
    await send_all_confirmed(records(topic, 5))
    assert topic.written == [b"r0", b"r1", b"r2", b"r3", b"r4"]
    assert topic.calls == 5


async def test_a_failed_acknowledgement_is_sent_again() -> None:
    topic = FlakyTopic(fail_ack={b"r1", b"r3"})
    await send_all_confirmed(records(topic, 5))
    assert sorted(topic.written) == [b"r0", b"r1", b"r2", b"r3", b"r4"]
    assert topic.calls == 7


async def test_records_never_queued_are_sent_one_by_one() -> None:
    topic = FlakyTopic(refuse_after=2)
    await send_all_confirmed(records(topic, 5))
    assert sorted(topic.written) == [b"r0", b"r1", b"r2", b"r3", b"r4"]
