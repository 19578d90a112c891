"""The real worker with its rebalance seek held where Faust 0.15 loses events.

After a rebalance Faust resumes the flow (faust/tables/recovery.py:478) and the stream
partitions (:649) before it seeks them to their committed offsets (:655), then clears the
agents' queues (:659). This consumer holds that seek until the fetcher is in the middle of
a batch of `zoho.webhooks.replay` records fetched before it, and the webhook agent (slow
anyway) cannot finish the batch it holds until the flow has resumed, so that:

- events of that batch already delivered wait in the agent's queue and are cleared;
- the rest of the batch arrives after the seek, above the reset read offset.

On Faust's own consumer the jump becomes a "gap" (faust/transport/consumer.py:1215) that
the next commit folds in (:1117-1127), and the records fetched again are dropped below the
read offset (:1224): the cleared events are committed without being processed, every time.
The commit guard reads them again. The hold waits for events, not for time; only its
upper bound (HOLD_SEEK_S) is a duration, so a rebalance without a backlog to fetch
cannot hang; the log says whether each seek was held.

REBALANCE_CONSUMER picks the consumer: `guard` (streams/transport.py) or `stock` (Faust
0.15's own aiokafka consumer, which the agents' `confirmed` calls do not reach)."""

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from streams import agents, app, main, transport

AGENT_DELAY_S = float(os.environ.get("SLOW_AGENT_S", "0.1"))
HOLD_SEEK_S = float(os.environ.get("HOLD_SEEK_S", "20"))
HELD_TOPIC = app.settings.topic("zoho.webhooks.replay")

# Closed while a seek is held; the webhook agent finishes no event while it is closed.
flow_resumed = asyncio.Event()
flow_resumed.set()


class HeldSeek(faust_aiokafka.Consumer):
    _seek_waiting: asyncio.Event | None = None
    _mid_batch: asyncio.Event
    _seek_done: asyncio.Event

    async def perform_seek(self) -> None:
        # The seek is held only while the fetcher runs (not at a first start).
        fetcher = self.app._fetcher  # type: ignore[attr-defined]  # noqa: SLF001
        if not (self.flow_active and fetcher.started and not fetcher.should_stop):
            await super().perform_seek()
            return
        self._mid_batch, self._seek_done = asyncio.Event(), asyncio.Event()
        self._seek_waiting = asyncio.Event()
        self._seek_waiting.set()
        flow_resumed.clear()
        try:
            try:
                await asyncio.wait_for(self._mid_batch.wait(), HOLD_SEEK_S)
                self.log.info("Seek held until a fetched batch was mid-delivery")
            except TimeoutError:
                self.log.info("Seek not held: no batch of %s to deliver", HELD_TOPIC)
            await super().perform_seek()
        except BaseException:
            flow_resumed.set()
            raise
        finally:
            self._seek_waiting = None
            self._seek_done.set()

    async def _wait_next_records(self, timeout: float) -> Any:
        records, active = await super()._wait_next_records(timeout)
        self._batch_sizes = {tp: len(batch) for tp, batch in (records or {}).items()}
        return records, active

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        delivered: dict[TP, int] = {}
        async for tp, message in super().getmany(timeout):
            yield tp, message
            delivered[tp] = delivered.get(tp, 0) + 1
            waiting = self._seek_waiting
            # Two delivered and one more to come: the seek lands between them.
            if (
                waiting is not None
                and tp.topic == HELD_TOPIC
                and delivered[tp] == 2
                and self._batch_sizes.get(tp, 0) > 2
            ):
                self._seek_waiting = None
                self._mid_batch.set()
                await self._seek_done.wait()

    def resume_flow(self) -> None:
        super().resume_flow()
        flow_resumed.set()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        flow_resumed.set()  # a rebalance waits for the agent's event in flight
        await super().on_partitions_revoked(revoked)


class HeldSeekStock(HeldSeek):
    pass


class HeldSeekGuard(HeldSeek, transport.Consumer):
    pass


class StockTransport(faust_aiokafka.Transport):
    Consumer = HeldSeekStock

    # The app passes the guard's setting to whichever transport it has.
    def __init__(self, *args: Any, hole_reread_s: float = 0, **kwargs: Any) -> None:  # noqa: ARG002
        super().__init__(*args, **kwargs)


class GuardTransport(transport.Transport):
    Consumer = HeldSeekGuard


def _slow(handle_batch: Any) -> Any:
    async def slow_handle_batch(batch: Any, *args: Any) -> None:
        await asyncio.sleep(AGENT_DELAY_S * len(batch))
        await flow_resumed.wait()
        await handle_batch(batch, *args)

    return slow_handle_batch


# The app made its transport at import (its table asks for it); the consumer comes later.
chosen = StockTransport if os.environ["REBALANCE_CONSUMER"] == "stock" else GuardTransport
app.app.transport = chosen(app.app.conf.broker_consumer, app.app)
agents.handle_batch = _slow(agents.handle_batch)

if __name__ == "__main__":
    main.main()
