"""Part 4: state at scale. The status table's changelog is pre-loaded with N tracked
records (produced straight to the changelog topic, as the worker would have written
them), then a worker starts on it:

- on an empty data directory: it rebuilds the table from the changelog (recovery);
- again on the same data directory: it reads only what changed since;
- on an empty one again, and so on, taking turns.

"Ready" is from the process's start to the conversion of a webhook produced before it:
Faust processes nothing before its table partitions are recovered. Resident memory and
disk are read once it is ready. The baseline is the same changelog in the memory store."""

import asyncio
import contextlib
import itertools
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from bench.common import (
    PARTITIONS,
    Child,
    Figure,
    bench_settings,
    disk_mib,
    end_offsets,
    produce,
    python,
    rss_mib,
    say,
    seed_sources,
    topics_of,
    wait_for_count,
    worker_env,
)
from bench.webhooks import converting_webhooks, envelope, kafka_key
from harness.pipeline import CdpThread
from schemas import topics
from schemas.settings import Settings
from streams.commands.topic_plan import changelog_topic

READY_TIMEOUT_S = 1800
PROBE_EVERY_S = 0.25


def changelog_records(count: int) -> "list[tuple[bytes, bytes, int]]":
    """States as the worker stores them: JSON keys and values, one record per key."""
    rng = random.Random(23)  # noqa: S311 - a seeded load, not a secret
    start = datetime(2026, 1, 1, tzinfo=UTC)
    statuses = ("Not Contacted", "Contacted", "Pre-Qualified", "Junk Lead")
    records = []
    for number in range(count):
        status = rng.choice(statuses)
        state = {
            "last_status": status,
            "last_seen_at": (start + timedelta(seconds=number)).isoformat(),
            "emitted": ["ConvertedLead"] if status == "Pre-Qualified" else [],
        }
        key = orjson.dumps(f"shop:Leads:{3_000_000_000 + number}")
        records.append((key, orjson.dumps(state), number % PARTITIONS))
    return records


async def probing(settings: Settings, first: int) -> None:
    """A new converting webhook every PROBE_EVERY_S: one produced before the start could
    be among the events Faust drops while a worker joins its group (see the README's
    delivery notes), so the first conversion of any of them says "processing"."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for number in itertools.count(first):
            [hook] = converting_webhooks(1, first_record=60_000_000 + number, seed=number)
            value = envelope(hook, datetime.now(UTC)).model_dump_json().encode()
            await producer.send_and_wait(settings.topic(topics.RAW), value, kafka_key(hook))
            await asyncio.sleep(PROBE_EVERY_S)
    finally:
        await producer.stop()


async def start_until_ready(
    settings: Settings, workdir: Path, data: Path, cdp: CdpThread, number: int, store: str
) -> tuple[float, float, float, float]:
    """Seconds to ready, resident MiB once ready, peak MiB, disk MiB."""
    conversions = settings.topic(topics.CONVERSIONS)
    before = await end_offsets(settings.kafka_bootstrap_servers, conversions)
    probes = asyncio.create_task(probing(settings, number * 100_000))
    env = worker_env(settings, workdir, cdp.url) | {
        "WORKER_DATA_DIR": str(data),
        "WORKER_STORE": store,
    }
    worker = Child("worker", python("streams.main"), env, workdir / "worker.log").start()
    try:
        await wait_for_count(
            settings.kafka_bootstrap_servers,
            conversions,
            before,
            1,
            READY_TIMEOUT_S,
            "ready (a probe's conversion)",
            worker.check_alive,
        )
        ready = time.monotonic() - worker.started_at
        resident, peak = rss_mib(worker.pid), rss_mib(worker.pid, peak=True)
    finally:
        probes.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probes
        worker.stop()
    return ready, resident, peak, disk_mib(data) if data.exists() else 0.0


def measure(bootstrap: str, count: int) -> list[Figure]:
    return asyncio.run(_measure(bootstrap, count, restarts=3))


async def _measure(bootstrap: str, count: int, restarts: int) -> list[Figure]:
    settings = bench_settings(bootstrap)
    say(
        f"4. state at scale: {count:,} tracked records: a start on an empty data dir, "
        f"{restarts} restarts on the same one, a start on the memory store"
    )
    cdp = CdpThread(token="")
    cdp.start()
    same: list[tuple[float, float, float, float]] = []
    empty: list[tuple[float, float, float, float]] = []
    memory: list[tuple[float, float, float, float]] = []
    try:
        async with topics_of(settings):
            await produce(
                bootstrap,
                changelog_topic(settings, "record-states"),
                changelog_records(count),
                count,
            )
            with tempfile.TemporaryDirectory(prefix="zoho-cdp-bench-") as tmp:
                workdir = Path(tmp)
                await seed_sources(settings, workdir)
                data = workdir / "worker-data"
                # Each recovery of the whole changelog takes minutes per million on this
                # machine: one of each, and the cheap restarts repeated.
                empty.append(await start_until_ready(settings, workdir, data, cdp, 1, "rocksdb"))
                say(f"   empty data dir: ready after {empty[-1][0]:.1f} s")
                for run in range(restarts):
                    same.append(
                        await start_until_ready(settings, workdir, data, cdp, 2 + run, "rocksdb")
                    )
                    say(
                        f"   same data dir: ready after {same[-1][0]:.1f} s, "
                        f"RSS {same[-1][1]:.0f} MiB"
                    )
                shutil.rmtree(data, ignore_errors=True)
                memory.append(await start_until_ready(settings, workdir, data, cdp, 99, "memory"))
                say(
                    f"   memory store: ready after {memory[-1][0]:.1f} s, "
                    f"RSS {memory[-1][1]:.0f} MiB"
                )
    finally:
        cdp.stop()
    part = "4. state at scale"
    # Recovery: a start on an empty directory less a start that recovers nothing.
    restart = statistics.median(s[0] for s in same)
    per_million = 1_000_000 / count
    mem = "memory store, same changelog"
    return [
        Figure(
            part,
            f"{count:,} records: RSS once ready",
            "MiB",
            [r[1] for r in same],
            [r[1] for r in memory],
            mem,
            "< 300 MB",
            higher_is_better=False,
        ),
        Figure(
            part,
            f"{count:,} records: peak RSS (recovery)",
            "MiB",
            [r[2] for r in empty],
            [r[2] for r in memory],
            mem,
            higher_is_better=False,
        ),
        Figure(
            part,
            f"{count:,} records: disk (data dir)",
            "MiB",
            [r[3] for r in same],
            higher_is_better=False,
        ),
        Figure(
            part,
            "ready: restart on the same data dir",
            "s",
            [r[0] for r in same],
            [r[0] for r in memory],
            mem,
            "< 10 s",
            higher_is_better=False,
        ),
        Figure(
            part,
            "ready: restart on an empty data dir",
            "s",
            [r[0] for r in empty],
            [r[0] for r in memory],
            mem,
            higher_is_better=False,
        ),
        Figure(
            part,
            "changelog recovery per million records",
            "s",
            [(e[0] - restart) * per_million for e in empty],
            [(m[0] - restart) * per_million for m in memory],
            mem,
            higher_is_better=False,
        ),
    ]
