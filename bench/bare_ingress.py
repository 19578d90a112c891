"""The ingress's baseline: a bare aiohttp handler that parses the same form and answers
202, without authentication, envelope or Kafka, on the event loop the ingress uses
(EVENT_LOOP).

`python -m bench.bare_ingress PORT`"""

import asyncio
import sys
import uuid

import uvloop
from aiohttp import web

from schemas.settings import Settings


async def accept(request: web.Request) -> web.Response:
    form = await request.post()
    return web.json_response({"envelope_id": uuid.uuid4().hex, "fields": len(form)}, status=202)


async def ready(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ready"})


def main() -> None:
    if Settings().event_loop == "uvloop":
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    app = web.Application()
    app.router.add_post("/sources/{source_id}", accept)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
