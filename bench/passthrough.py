"""The worker's baseline: a Faust agent that copies each record's bytes from one topic to
another and confirms the sends of each batch together before taking the next, with the
worker's batches (WORKER_BATCH_SIZE, WORKER_BATCH_WAIT_S) and interpreter set-up.

`python -m bench.passthrough BOOTSTRAP APP_ID SOURCE TARGET DATADIR`"""

import asyncio
import sys
from typing import cast

import faust
from faust.streams import Stream
from faust.types import StreamT

from schemas import runtime
from schemas.settings import Settings

# Batches as the worker takes them.
SETTINGS = Settings()

bootstrap, app_id, source_name, target_name, datadir = sys.argv[1:6]
app = faust.App(
    app_id,
    broker=f"kafka://{bootstrap}",
    store="memory://",
    datadir=datadir,
    producer_acks=-1,
    broker_session_timeout=6,
    web_enabled=False,
    autodiscover=False,
)
source = app.topic(source_name, key_serializer="raw", value_serializer="raw")
target = app.topic(target_name, key_serializer="raw", value_serializer="raw")


@app.agent(source, concurrency=1)
async def copy(stream: StreamT[bytes]) -> None:
    async for batch in cast(Stream[bytes], stream).take_events(
        SETTINGS.worker_batch_size, within=SETTINGS.worker_batch_wait_s
    ):
        sent = [await target.send(key=e.message.key, value=e.message.value) for e in batch]
        await asyncio.gather(*sent)


if __name__ == "__main__":
    runtime.prepare(SETTINGS.event_loop)
    faust.Worker(app, loglevel="warning").execute_from_commandline()
