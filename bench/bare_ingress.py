"""The ingress's baselines, on the event loop the ingress uses (EVENT_LOOP):

- `python -m bench.bare_ingress PORT`: a bare aiohttp handler that parses the same form
  and answers 202, without authentication, envelope or Kafka;
- `python -m bench.bare_ingress PORT --kafka`: the same handler that also sends the body
  to the raw topic with the ingress's producer and awaits Kafka's acknowledgement before
  the 202 — the least any ingress that answers only once Kafka has the webhook must do."""

import sys
import uuid
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiokafka import AIOKafkaProducer

from ingress.kafka import new_producer
from schemas import runtime, topics
from schemas.settings import Settings

PRODUCER = web.AppKey("producer", AIOKafkaProducer)
TOPIC = web.AppKey("topic", str)


async def accept(request: web.Request) -> web.Response:
    form = await request.post()
    return web.json_response({"envelope_id": uuid.uuid4().hex, "fields": len(form)}, status=202)


async def accept_into_kafka(request: web.Request) -> web.Response:
    form = await request.post()
    envelope_id = uuid.uuid4().hex
    key = f"{request.match_info['source_id']}:{envelope_id}".encode()
    sent = await request.app[PRODUCER].send(request.app[TOPIC], value=await request.read(), key=key)
    await sent
    return web.json_response({"envelope_id": envelope_id, "fields": len(form)}, status=202)


async def ready(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def producer_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        producer = new_producer(settings)
        await producer.start()
        app[PRODUCER] = producer
        app[TOPIC] = settings.topic(topics.RAW)
        try:
            yield
        finally:
            await producer.stop()

    return context


def main() -> None:
    settings = Settings()
    runtime.prepare(settings.event_loop)
    app = web.Application()
    if "--kafka" in sys.argv[2:]:
        app.cleanup_ctx.append(producer_context(settings))
        app.router.add_post("/sources/{source_id}", accept_into_kafka)
    else:
        app.router.add_post("/sources/{source_id}", accept)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
