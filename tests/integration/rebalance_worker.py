"""The real worker made slow where a rebalance hurts: its consumer waits before seeking
to the committed offsets, and the webhook agent takes its time over every event.

REBALANCE_CONSUMER picks the consumer: `guard` (streams/transport.py) or `stock` (Faust
0.15's own aiokafka consumer, which the agents' `confirmed` calls do not reach)."""

import asyncio
import os
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from streams import agents, app, main, transport

SEEK_DELAY_S = float(os.environ.get("SLOW_SEEK_S", "2"))
AGENT_DELAY_S = float(os.environ.get("SLOW_AGENT_S", "0.1"))


class SlowSeekStock(faust_aiokafka.Consumer):
    async def perform_seek(self) -> None:
        await asyncio.sleep(SEEK_DELAY_S)
        await super().perform_seek()


class SlowSeekGuard(transport.Consumer):
    async def perform_seek(self) -> None:
        await asyncio.sleep(SEEK_DELAY_S)
        await super().perform_seek()


class StockTransport(faust_aiokafka.Transport):
    Consumer = SlowSeekStock

    # The app passes the guard's setting to whichever transport it has.
    def __init__(self, *args: Any, hole_reread_s: float = 0, **kwargs: Any) -> None:  # noqa: ARG002
        super().__init__(*args, **kwargs)


class GuardTransport(transport.Transport):
    Consumer = SlowSeekGuard


def _slow(handle_webhook: Any) -> Any:
    async def slow_handle_webhook(*args: Any) -> None:
        await asyncio.sleep(AGENT_DELAY_S)
        await handle_webhook(*args)

    return slow_handle_webhook


# The app made its transport at import (its table asks for it); the consumer comes later.
chosen = StockTransport if os.environ["REBALANCE_CONSUMER"] == "stock" else GuardTransport
app.app.transport = chosen(app.app.conf.broker_consumer, app.app)
agents.handle_webhook = _slow(agents.handle_webhook)  # type: ignore[assignment]

if __name__ == "__main__":
    main.main()
