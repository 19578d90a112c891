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
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

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


async def probe(settings: Settings, number: int) -> None:
    [hook] = converting_webhooks(1, first_record=60_000_000 + number, seed=number)
    value = envelope(hook, datetime.now(UTC)).model_dump_json().encode()
    await produce(
        settings.kafka_bootstrap_servers,
        settings.topic(topics.RAW),
        [(kafka_key(hook), value, None)],
        1,
    )


async def start_until_ready(
    settings: Settings, workdir: Path, data: Path, cdp: CdpThread, number: int, store: str
) -> tuple[float, float, float, float]:
    """Seconds to ready, resident MiB once ready, peak MiB, disk MiB."""
    conversions = settings.topic(topics.CONVERSIONS)
    before = await end_offsets(settings.kafka_bootstrap_servers, conversions)
    await probe(settings, number)
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
            "ready (the probe's conversion)",
            worker.check_alive,
        )
        ready = time.monotonic() - worker.started_at
        resident, peak = rss_mib(worker.pid), rss_mib(worker.pid, peak=True)
    finally:
        worker.stop()
    return ready, resident, peak, disk_mib(data) if data.exists() else 0.0


def measure(bootstrap: str, count: int, quick: bool) -> list[Figure]:
    return asyncio.run(_measure(bootstrap, count, repeats=2 if quick else 3))


async def _measure(bootstrap: str, count: int, repeats: int) -> list[Figure]:
    settings = bench_settings(bootstrap)
    say(f"4. state at scale: {count:,} tracked records, {repeats} restarts of each kind")
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
                data = workdir / "worker-data"
                number = 0
                for run in range(repeats):
                    shutil.rmtree(data, ignore_errors=True)
                    number += 1
                    empty.append(
                        await start_until_ready(settings, workdir, data, cdp, number, "rocksdb")
                    )
                    number += 1
                    same.append(
                        await start_until_ready(settings, workdir, data, cdp, number, "rocksdb")
                    )
                    shutil.rmtree(data, ignore_errors=True)
                    number += 1
                    memory.append(
                        await start_until_ready(settings, workdir, data, cdp, number, "memory")
                    )
                    say(
                        f"   run {run + 1}: ready after {empty[-1][0]:.1f} s (empty dir), "
                        f"{same[-1][0]:.1f} s (same dir), {memory[-1][0]:.1f} s (memory); "
                        f"RSS {same[-1][1]:.0f} MiB, memory store {memory[-1][1]:.0f} MiB"
                    )
    finally:
        cdp.stop()
    part = "4. state at scale"
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
            [(e[0] - s[0]) * per_million for e, s in zip(empty, same, strict=True)],
            [(m[0] - s[0]) * per_million for m, s in zip(memory, same, strict=True)],
            mem,
            higher_is_better=False,
        ),
    ]
