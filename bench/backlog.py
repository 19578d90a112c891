"""Part 1: the worker alone, draining a pre-loaded backlog of raw envelopes to
cdp.conversions, against a Faust pass-through agent copying the same bytes on the same
broker (bench/passthrough.py).

Each run gets topics of its own, pre-loaded before the process under test starts, so it
has the machine to itself. The last record of each partition is a converting marker:
once every conversion is on the topic, every webhook was processed. The rate is timed
with Kafka's own record times, from the process's first write (the worker's first table
write, the pass-through's first copy) to its last, so start-up is not counted."""

import asyncio
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    PARTITIONS,
    Child,
    Figure,
    bench_settings,
    cpu_seconds,
    end_offsets,
    produce,
    python,
    rss_mib,
    say,
    seed_sources,
    timestamps,
    topics_of,
    wait_for_count,
    worker_env,
)
from bench.webhooks import Backlog, backlog, converting_webhooks, envelope, kafka_key
from harness.pipeline import CdpThread
from schemas import topics
from schemas.settings import Settings
from streams.commands.topic_plan import changelog_topic

PASSTHROUGH_TOPIC = "bench.passthrough"
# Set (by `--profile`): py-spy samples the worker's drain into this file.
PROFILE: list[Path] = []
MIXES = {"realistic, 1 in 10 converts": 0.1, "heavy, 1 in 3 converts": 1 / 3}


@dataclass(frozen=True)
class Drain:
    rate: float  # webhooks per second
    cpu_ms_per_1000: float
    peak_rss_mib: float


def _sample(pid: int) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(  # noqa: S603 - our own command
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--rate",
            "100",
            "--format",
            "raw",
            "--output",
            str(PROFILE[0]),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def markers(first_record: int) -> list[tuple[bytes, bytes, int]]:
    """One converting webhook per partition, produced last into it."""
    now = datetime(2026, 4, 1, tzinfo=UTC)
    hooks = converting_webhooks(PARTITIONS, first_record=first_record, seed=3)
    return [
        (kafka_key(hook), envelope(hook, now).model_dump_json().encode(), partition)
        for partition, hook in enumerate(hooks)
    ]


async def preload(
    settings: Settings, load: Backlog, tail: Sequence[tuple[bytes, bytes, int]]
) -> None:
    records = [(key, value, None) for key, value in load.records] + list(tail)
    await produce(
        settings.kafka_bootstrap_servers, settings.topic(topics.RAW), records, len(records)
    )


async def run_worker(bootstrap: str, load: Backlog, cdp: CdpThread, workdir: Path) -> Drain:
    settings = bench_settings(bootstrap)
    tail = markers(80_000_000)
    async with topics_of(settings):
        await seed_sources(settings, workdir)
        await preload(settings, load, tail)
        conversions = settings.topic(topics.CONVERSIONS)
        changelog = changelog_topic(settings, "record-states")
        start = await end_offsets(bootstrap, conversions)
        worker = Child(
            "worker",
            python("streams.main"),
            worker_env(settings, workdir, cdp.url),
            workdir / "worker.log",
        ).start()
        try:
            # CPU from the first webhook on: start-up is not the drain.
            await wait_for_count(bootstrap, changelog, {}, 1, 180, "start", worker.check_alive)
            cpu_before = cpu_seconds(worker.pid)
            sampler = _sample(worker.pid) if PROFILE else None
            await wait_for_count(
                bootstrap,
                conversions,
                start,
                load.conversions + len(tail),
                600,
                "conversions",
                worker.check_alive,
            )
            if sampler:
                sampler.send_signal(signal.SIGINT)
                sampler.wait(60)
            cpu = cpu_seconds(worker.pid) - cpu_before
            peak = rss_mib(worker.pid, peak=True)
        finally:
            worker.stop()
        first = min(await timestamps(bootstrap, changelog, {}))
        last = max(await timestamps(bootstrap, conversions, start))
    count = len(load.records) + len(tail)
    return Drain(count / (last - first), cpu / count * 1e6, peak)


async def run_passthrough(bootstrap: str, load: Backlog, workdir: Path) -> Drain:
    settings = bench_settings(bootstrap)
    tail = markers(80_000_000)
    async with topics_of(settings, PASSTHROUGH_TOPIC):
        await preload(settings, load, tail)
        target = settings.topic(PASSTHROUGH_TOPIC)
        copier = Child(
            "pass-through",
            python(
                "bench.passthrough",
                bootstrap,
                settings.app_id,
                settings.topic(topics.RAW),
                target,
                str(workdir / "passthrough-data"),
            ),
            worker_env(settings, workdir, ""),
            workdir / "passthrough.log",
        ).start()
        count = len(load.records) + len(tail)
        try:
            await wait_for_count(bootstrap, target, {}, 1, 180, "start", copier.check_alive)
            cpu_before = cpu_seconds(copier.pid)
            await wait_for_count(bootstrap, target, {}, count, 600, "copies", copier.check_alive)
            cpu = cpu_seconds(copier.pid) - cpu_before
            peak = rss_mib(copier.pid, peak=True)
        finally:
            copier.stop()
        stamps = await timestamps(bootstrap, target, {})
    return Drain(count / (max(stamps) - min(stamps)), cpu / count * 1e6, peak)


def measure(bootstrap: str, count: int, repeats: int) -> list[Figure]:
    return asyncio.run(_measure(bootstrap, count, repeats))


async def _measure(bootstrap: str, count: int, repeats: int) -> list[Figure]:
    figures: list[Figure] = []
    cdp = CdpThread(token="")
    cdp.start()
    try:
        with tempfile.TemporaryDirectory(prefix="zoho-cdp-bench-") as tmp:
            for mix, share in MIXES.items():
                load = backlog(count, share)
                say(f"1. worker backlog, {mix}: {count} webhooks, {load.conversions} convert")
                worker: list[Drain] = []
                base: list[Drain] = []
                for run in range(repeats):
                    # Taking turns, so a busy spell on the machine hits both.
                    workdir = Path(tmp) / f"{share:.2f}-{run}"
                    workdir.mkdir()
                    base.append(await run_passthrough(bootstrap, load, workdir))
                    worker.append(await run_worker(bootstrap, load, cdp, workdir))
                    say(
                        f"   run {run + 1}: worker {worker[-1].rate:,.0f}/s, "
                        f"pass-through {base[-1].rate:,.0f}/s"
                    )
                target = "≥ 0.8×" if share < 0.2 else "≥ 0.6×"
                figures += [
                    Figure(
                        "1. worker backlog",
                        f"{mix}: webhooks/s",
                        "/s",
                        [d.rate for d in worker],
                        [d.rate for d in base],
                        "Faust pass-through, batch-confirmed",
                        target,
                    ),
                    Figure(
                        "1. worker backlog",
                        f"{mix}: CPU ms/1,000",
                        "ms",
                        [d.cpu_ms_per_1000 for d in worker],
                        [d.cpu_ms_per_1000 for d in base],
                        "pass-through",
                        higher_is_better=False,
                    ),
                    Figure(
                        "1. worker backlog",
                        f"{mix}: peak RSS",
                        "MiB",
                        [d.peak_rss_mib for d in worker],
                        [d.peak_rss_mib for d in base],
                        "pass-through",
                        higher_is_better=False,
                    ),
                ]
    finally:
        cdp.stop()
    return figures
