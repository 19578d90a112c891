"""Part 5: the sink alone: conversions pre-loaded into cdp.conversions, delivered by the
worker to a stand-in CDP that answers each request after 5 ms, with batching on
(CDP_BATCH_SIZE=100) and off (1). The figure is events/s at the CDP, first to last."""

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.common import (
    Child,
    Figure,
    bar,
    bench_settings,
    produce,
    python,
    say,
    seed_sources,
    topics_of,
    wait_until,
    worker_env,
)
from bench.decisions import no_lookup
from bench.webhooks import converting_webhooks, envelope, sources
from harness.pipeline import CdpThread
from schemas import topics
from streams.decisions.process import Tracked, process
from streams.decisions.status import RecordState

CDP_DELAY_S = 0.005
BATCH = 100


class SlowCdp:
    """Notes each event's arrival, then answers after CDP_DELAY_S (on the CDP's thread)."""

    def __init__(self) -> None:
        self.at: list[float] = []

    async def respond(self, events: list[dict[str, Any]]) -> web.Response | None:
        now = time.perf_counter()
        self.at += [now] * len(events)
        await asyncio.sleep(CDP_DELAY_S)
        return web.json_response({"accepted": len(events)})


async def conversions(count: int) -> list[tuple[bytes, bytes, None]]:
    known = sources()
    now = datetime.now(UTC)
    made = []
    for hook in converting_webhooks(count, first_record=50_000_000, seed=29):
        raw = envelope(hook, now).model_dump_json().encode()
        outcome = await process(raw, known, lambda _key: RecordState.empty(), no_lookup)
        if not isinstance(outcome, Tracked) or outcome.conversion is None:
            raise RuntimeError(f"a converting webhook did not convert: {outcome}")
        event = outcome.conversion
        made.append((event.cdp_id.encode(), event.model_dump_json().encode(), None))
    return made


async def deliver(bootstrap: str, events: list[tuple[bytes, bytes, None]], batch: int) -> float:
    settings = bench_settings(bootstrap)
    cdp = CdpThread(token="")
    slow = SlowCdp()
    cdp.cdp.respond = slow.respond
    cdp.start()
    try:
        async with topics_of(settings):
            await produce(bootstrap, settings.topic(topics.CONVERSIONS), events, len(events))
            with tempfile.TemporaryDirectory(prefix="zoho-cdp-bench-") as tmp:
                workdir = Path(tmp)
                await seed_sources(settings, workdir)
                env = worker_env(settings, workdir, cdp.url) | {"CDP_BATCH_SIZE": str(batch)}
                worker = Child("worker", python("streams.main"), env, workdir / "worker.log")
                worker.start()
                try:
                    with bar(len(events), f"at the CDP, batch {batch}") as progress:

                        async def all_there() -> bool:
                            worker.check_alive()
                            progress.update(len(slow.at) - progress.n)
                            return len(slow.at) >= len(events)

                        await wait_until(all_there, 900, "every event at the CDP", 0.25)
                finally:
                    worker.stop()
    finally:
        cdp.stop()
    return len(slow.at) / (max(slow.at) - min(slow.at))


def measure(bootstrap: str, batched: int, single: int, repeats: int) -> list[Figure]:
    return asyncio.run(_measure(bootstrap, batched, single, repeats))


async def _measure(bootstrap: str, batched: int, single: int, repeats: int) -> list[Figure]:
    say(
        f"5. sink: {batched} events batched by {BATCH}, {single} one by one, CDP answering "
        f"in {CDP_DELAY_S * 1000:.0f} ms, x{repeats}"
    )
    events = await conversions(batched)
    on: list[float] = []
    off: list[float] = []
    for run in range(repeats):
        on.append(await deliver(bootstrap, events, BATCH))
        off.append(await deliver(bootstrap, events[:single], 1))
        say(f"   run {run + 1}: {on[-1]:,.0f} events/s batched, {off[-1]:,.0f} one by one")
    return [
        Figure(
            "5. sink",
            f"events/s, batches of {BATCH}",
            "/s",
            on,
            off,
            "batching off (one event per request)",
        ),
    ]
