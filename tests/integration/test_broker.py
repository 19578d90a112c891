"""The session's broker takes the writes the pipeline relies on."""

import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration


async def create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    assert [error for _, error, *_ in response.topic_errors] == [0]


async def read_until(consumer: AIOKafkaConsumer, last: bytes, timeout: float = 30) -> list[bytes]:
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    while last not in values:
        assert time.monotonic() < deadline, f"{last!r} not read within {timeout} s; got {values}"
        batches = await consumer.getmany(timeout_ms=500)
        values += [record.value for records in batches.values() for record in records]
    return values


@pytest.mark.asyncio
async def test_idempotent_and_transactional_writes_read_back(kafka_bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    topic = f"test.broker.{run}"
    await create_topic(kafka_bootstrap, topic)  # one partition keeps the order

    idempotent = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    transactional = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"test-broker-{run}"
    )
    await idempotent.start()
    await transactional.start()
    try:
        await idempotent.send_and_wait(topic, b"idempotent")
        async with transactional.transaction():
            await transactional.send(topic, b"committed")
        # Written to the log, then aborted: a read_committed consumer must skip it.
        await transactional.begin_transaction()
        await (await transactional.send(topic, b"aborted"))
        await transactional.abort_transaction()
        await idempotent.send_and_wait(topic, b"last")
    finally:
        await transactional.stop()
        await idempotent.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        values = await read_until(consumer, b"last")
    finally:
        await consumer.stop()

    assert values == [b"idempotent", b"committed", b"last"]
