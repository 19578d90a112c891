"""Part 3: end to end at a steady rate: from the ingress's 202 to the stand-in CDP's
receipt, for the one webhook in ten that converts; the ingress, the worker (with its sink) and the
broker all on this machine; the CDP batch wait is the worker's default.

The run is cut into equal windows, one figure each, so the median and the spread say how
steady it was. The hops come from the records' own times, read after the run: the raw
record's (the ingress's send) to the conversion's (the worker's send) is the worker's
share, the conversion's to the CDP's receipt the sink's."""

import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import (
    Child,
    Figure,
    bar,
    bench_settings,
    percentile,
    python,
    say,
    stamped_values,
    topics_of,
    wait_until,
    worker_env,
)
from bench.ingress_load import _serving
from bench.webhooks import API_KEYS, form_webhook
from harness.pipeline import CdpThread, free_port
from schemas import topics
from schemas.settings import Settings

RATE = 100
CONVERTING_EVERY = 10
START_TIMEOUT_S = 180


class Arrivals:
    """When each conversion reached the stand-in CDP, by cdp_id (set on the CDP's thread):
    `at` on the performance counter, `wall` on the clock Kafka's record times use."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    async def respond(self, events: list[dict[str, Any]]) -> web.Response | None:
        now, wall = time.perf_counter(), time.time()
        for event in events:
            self.at.setdefault(event["cdp_id"], now)
            self.wall.setdefault(event["cdp_id"], wall)
        return None


def webhook(number: int) -> tuple[str, dict[str, str]]:
    """A new lead each time; one in CONVERTING_EVERY converts (the realistic mix), and
    only those reach the CDP."""
    rng = random.Random(number)  # noqa: S311 - a seeded load, not a secret
    source, fields = form_webhook(rng, 70_000_000 + number)
    converts = number % CONVERTING_EVERY == 0
    return source, fields | {"Lead Status": "Pre-Qualified" if converts else "Contacted"}


def measure(bootstrap: str, seconds: int, windows: int) -> list[Figure]:
    return asyncio.run(_measure(bootstrap, seconds, windows))


async def _measure(bootstrap: str, seconds: int, windows: int) -> list[Figure]:
    settings = bench_settings(bootstrap)
    say(f"3. end to end: {RATE} webhooks/s for {seconds} s, {windows} windows")
    arrivals = Arrivals()
    cdp = CdpThread(token="")
    cdp.cdp.respond = arrivals.respond
    cdp.start()
    answered: dict[str, float] = {}
    try:
        async with topics_of(settings):
            with tempfile.TemporaryDirectory(prefix="zoho-cdp-bench-") as tmp:
                workdir = Path(tmp)
                port = free_port()
                base = f"http://127.0.0.1:{port}"
                env = worker_env(settings, workdir, cdp.url) | {"INGRESS_PORT": str(port)}
                ingress = Child("ingress", python("ingress.main"), env, workdir / "ingress.log")
                worker = Child("worker", python("streams.main"), env, workdir / "worker.log")
                ingress.start()
                worker.start()
                try:
                    await _serving(ingress, base)
                    async with aiohttp.ClientSession() as session:
                        # One conversion through first: the worker has joined its group.
                        source, fields = webhook(0)
                        await _post(session, base, source, fields, answered)
                        await wait_until(
                            lambda: _arrived(arrivals, fields["CDP ID"], worker),
                            START_TIMEOUT_S,
                            "the first conversion",
                        )
                        answered.clear()
                        started = await _paced(session, base, seconds, answered)
                    await wait_until(
                        lambda: _all_arrived(arrivals, answered, worker),
                        120,
                        "every conversion at the CDP",
                    )
                    hops = await _hops(settings, arrivals)
                finally:
                    worker.stop()
                    ingress.stop()
    finally:
        cdp.stop()
    p50: list[float] = []
    p99: list[float] = []
    span = seconds / windows
    for window in range(windows):
        latencies = [
            arrivals.at[cdp_id] - at
            for cdp_id, at in answered.items()
            if started + window * span <= at < started + (window + 1) * span
        ]
        p50.append(percentile(latencies, 0.5) * 1000)
        p99.append(percentile(latencies, 0.99) * 1000)
    part = "3. end to end"
    hop_figures = [
        Figure(part, f"  {hop}: {name}", "ms", [value], higher_is_better=False)
        for hop, times in hops.items()
        for name, value in (
            ("p50", percentile(times, 0.5) * 1000),
            ("p99", percentile(times, 0.99) * 1000),
        )
    ]
    return [
        Figure(part, f"202 → CDP at {RATE}/s: p50", "ms", p50, higher_is_better=False),
        Figure(
            part,
            f"202 → CDP at {RATE}/s: p99",
            "ms",
            p99,
            target="≤ 250 ms",
            higher_is_better=False,
        ),
        *hop_figures,
    ]


async def _hops(settings: Settings, arrivals: Arrivals) -> dict[str, list[float]]:
    """Per conversion: raw record → conversion record (the worker), conversion record →
    the CDP's receipt (the sink), in seconds."""
    bootstrap = settings.kafka_bootstrap_servers
    raw_at: dict[str, float] = {}
    for stamp, value in await stamped_values(bootstrap, settings.topic(topics.RAW), {}):
        cdp_id = json.loads(value or b"{}").get("parameters", {}).get("CDP ID")
        if cdp_id in arrivals.wall:
            raw_at.setdefault(cdp_id, stamp)
    converted_at: dict[str, float] = {}
    for stamp, value in await stamped_values(bootstrap, settings.topic(topics.CONVERSIONS), {}):
        cdp_id = json.loads(value or b"{}").get("cdp_id")
        if cdp_id in raw_at:
            converted_at.setdefault(cdp_id, stamp)
    return {
        "worker, raw → conversion": [converted_at[c] - raw_at[c] for c in converted_at],
        "sink, conversion → CDP": [arrivals.wall[c] - converted_at[c] for c in converted_at],
    }


async def _paced(
    session: aiohttp.ClientSession, base: str, seconds: int, answered: dict[str, float]
) -> float:
    tasks = []
    started = time.perf_counter()
    with bar(seconds * RATE, "webhooks", "req") as progress:
        for number in range(seconds * RATE):
            delay = started + number / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            source, fields = webhook(number + 1)
            tasks.append(asyncio.create_task(_post(session, base, source, fields, answered)))
            progress.update()
        await asyncio.gather(*tasks)
    return started


async def _post(
    session: aiohttp.ClientSession,
    base: str,
    source: str,
    fields: dict[str, str],
    answered: dict[str, float],
) -> None:
    async with session.post(
        f"{base}/sources/{source}", params={"api_key": API_KEYS[source]}, data=fields
    ) as response:
        await response.read()
        if response.status != 202:
            raise RuntimeError(f"answered {response.status} to a valid webhook")
    if fields["Lead Status"] == "Pre-Qualified":
        answered[fields["CDP ID"]] = time.perf_counter()


async def _arrived(arrivals: Arrivals, cdp_id: str, worker: Child) -> bool:
    worker.check_alive()
    return cdp_id in arrivals.at


async def _all_arrived(arrivals: Arrivals, answered: dict[str, float], worker: Child) -> bool:
    worker.check_alive()
    return all(cdp_id in arrivals.at for cdp_id in answered)
