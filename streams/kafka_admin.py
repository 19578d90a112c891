"""The Kafka admin client, set up from the settings and closed however the block ends."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient

from schemas.settings import Settings


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **settings.aiokafka_security()
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()
