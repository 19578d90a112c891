"""Part 2: the ingress alone, against a bare aiohttp handler answering the same form.

Realistic form-encoded Zoho webhooks (16 fields, about 600 bytes) at 32 connections,
all in flight at once (requests/s, p50/p99), then a steady 200 requests/s (p50/p99). The
load client is this process (`bench.http_load`, lean so the server has the cores); it
does the same work for every server.

A third server, the floor, is the bare handler plus one awaited Kafka send with the
ingress's producer: the ingress against it shows what the ingress's own steps cost, the
floor against the bare handler how far the bare handler's rate is reachable at all."""

import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.common import (
    Child,
    Figure,
    bar,
    bench_settings,
    cpu_seconds,
    percentile,
    python,
    say,
    topics_of,
    worker_env,
)
from bench.http_load import Pool, form_post
from bench.webhooks import API_KEYS, form_webhook
from harness.pipeline import free_port

CONNECTIONS = 32
PACED_RATE = 200
WARM_UP = 300


@dataclass(frozen=True)
class Load:
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_1000: float = 0.0  # the server's, flat out only


def forms(count: int, seed: int) -> list[bytes]:
    """Encoded webhook requests, ready to write."""
    rng = random.Random(seed)  # noqa: S311 - a seeded load, not a secret
    requests = []
    for number in range(count):
        source, fields = form_webhook(rng, number)
        requests.append(form_post(f"/sources/{source}", {"api_key": API_KEYS[source]}, fields))
    return requests


async def post(pool: Pool, request: bytes) -> float:
    started = time.perf_counter()
    status = await pool.exchange(request)
    if status != 202:
        raise RuntimeError(f"answered {status} to a valid webhook")
    return time.perf_counter() - started


async def flat_out(port: int, requests: Sequence[bytes], what: str, server_pid: int) -> Load:
    pool = Pool("127.0.0.1", port)
    try:
        for request in requests[:WARM_UP]:
            await post(pool, request)
        queue = iter(requests[WARM_UP:])
        latencies: list[float] = []
        with bar(len(requests) - WARM_UP, what, "req") as progress:

            async def lane() -> None:
                for request in queue:
                    latencies.append(await post(pool, request))
                    progress.update()

            started = time.perf_counter()
            cpu_before = cpu_seconds(server_pid)
            await asyncio.gather(*(lane() for _ in range(CONNECTIONS)))
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(server_pid) - cpu_before
    finally:
        pool.close()
    return Load(len(latencies) / elapsed, *_ms(latencies), cpu / len(latencies) * 1e6)


async def paced(port: int, requests: Sequence[bytes], what: str) -> Load:
    """One request every 1/PACED_RATE s, whatever the answers do (an open loop)."""
    pool = Pool("127.0.0.1", port)
    try:
        for request in requests[:WARM_UP]:
            await post(pool, request)
        tasks = []
        started = time.perf_counter()
        with bar(len(requests) - WARM_UP, what, "req") as progress:
            for number, request in enumerate(requests[WARM_UP:]):
                delay = started + number / PACED_RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(post(pool, request)))
                progress.update()
            latencies = await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - started
    finally:
        pool.close()
    return Load(len(latencies) / elapsed, *_ms(latencies))


def _ms(latencies: Sequence[float]) -> tuple[float, float]:
    return percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000


async def _serving(child: Child, base: str) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while True:
            child.check_alive()
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{child.name} did not get ready:\n{child.log_tail()}")
            await asyncio.sleep(0.2)


async def _load(
    server: Child,
    port: int,
    hooks: Sequence[bytes],
    slow: Sequence[bytes],
    into: dict[str, list[Load]],
) -> None:
    """Starts the server, loads it flat out and then paced (unless `slow` is empty), and
    stops it."""
    server.start()
    try:
        await _serving(server, f"http://127.0.0.1:{port}")
        into["flat"].append(await flat_out(port, hooks, server.name, server.pid))
        if slow:
            into["paced"].append(await paced(port, slow, f"{server.name} {PACED_RATE}/s"))
    finally:
        server.stop()


def measure(bootstrap: str, count: int, paced_s: int, repeats: int) -> list[Figure]:
    return asyncio.run(_measure(bootstrap, count, paced_s, repeats))


async def _measure(bootstrap: str, count: int, paced_s: int, repeats: int) -> list[Figure]:
    settings = bench_settings(bootstrap)
    hooks = forms(count + WARM_UP, seed=17)
    slow = forms(paced_s * PACED_RATE + WARM_UP, seed=19)
    say(
        f"2. ingress: {count} webhooks at {CONNECTIONS} connections, then {PACED_RATE}/s "
        f"for {paced_s} s, x{repeats}"
    )
    ours: dict[str, list[Load]] = {"flat": [], "paced": []}
    bare: dict[str, list[Load]] = {"flat": [], "paced": []}
    floor: dict[str, list[Load]] = {"flat": []}
    async with topics_of(settings):
        with tempfile.TemporaryDirectory(prefix="zoho-cdp-bench-") as tmp:
            workdir = Path(tmp)
            for run in range(repeats):
                port = free_port()
                ingress = Child(
                    "ingress",
                    python("ingress.main"),
                    worker_env(settings, workdir, "") | {"INGRESS_PORT": str(port)},
                    workdir / "ingress.log",
                )
                await _load(ingress, port, hooks, slow, ours)
                port = free_port()
                server = Child(
                    "bare aiohttp",
                    python("bench.bare_ingress", str(port)),
                    worker_env(settings, workdir, ""),
                    workdir / "bare.log",
                )
                await _load(server, port, hooks, slow, bare)
                port = free_port()
                server = Child(
                    "bare + Kafka send",
                    python("bench.bare_ingress", str(port), "--kafka"),
                    worker_env(settings, workdir, ""),
                    workdir / "floor.log",
                )
                # Only its rate at full load is compared; a paced run would be unreported.
                await _load(server, port, hooks, (), floor)
                say(
                    f"   run {run + 1}: ingress {ours['flat'][-1].rate:,.0f}/s "
                    f"(p99 {ours['flat'][-1].p99_ms:.1f} ms), bare {bare['flat'][-1].rate:,.0f}/s, "
                    f"bare + Kafka send {floor['flat'][-1].rate:,.0f}/s"
                )
    bare_name = "bare aiohttp handler, same form, 202, no Kafka"
    floor_name = "bare handler + one awaited Kafka send (the floor)"
    part = "2. ingress"

    def figure(
        name: str,
        unit: str,
        key: str,
        attr: str,
        target: str = "",
        up: bool = False,
        measured: dict[str, list[Load]] = ours,
        baseline: tuple[str, dict[str, list[Load]]] = (bare_name, bare),
    ) -> Figure:
        base_name, base = baseline
        return Figure(
            part,
            name,
            unit,
            [getattr(load, attr) for load in measured[key]],
            [getattr(load, attr) for load in base[key]],
            base_name,
            target,
            higher_is_better=up,
        )

    return [
        figure(f"{CONNECTIONS} connections: requests/s", "/s", "flat", "rate", "≥ 0.85×", True),
        figure(f"{CONNECTIONS} connections: p50", "ms", "flat", "p50_ms"),
        figure(f"{CONNECTIONS} connections: p99", "ms", "flat", "p99_ms"),
        figure(f"{CONNECTIONS} connections: CPU ms/1,000", "ms", "flat", "cpu_ms_per_1000"),
        figure(f"{PACED_RATE}/s: p50", "ms", "paced", "p50_ms"),
        figure(f"{PACED_RATE}/s: p99", "ms", "paced", "p99_ms", "≤ 50 ms"),
        # What the target leaves room for: no ingress that answers only once Kafka has
        # the webhook can beat a handler that does nothing else.
        figure(
            "floor (bare + Kafka send): requests/s",
            "/s",
            "flat",
            "rate",
            up=True,
            measured=floor,
        ),
        figure(
            "floor (bare + Kafka send): CPU ms/1,000",
            "ms",
            "flat",
            "cpu_ms_per_1000",
            measured=floor,
        ),
        figure(
            f"{CONNECTIONS} connections: req/s against the floor",
            "/s",
            "flat",
            "rate",
            up=True,
            baseline=(floor_name, floor),
        ),
    ]
