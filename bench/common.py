"""What every part of the benchmark shares: figures, topics, processes, Kafka helpers."""

import asyncio
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from tqdm import tqdm

from schemas.settings import Settings
from sources.crypto import generate_key
from streams.commands.topic_plan import DesiredTopic, desired_topics
from streams.commands.topics import set_up_topics
from streams.kafka_admin import admin_client

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 3  # the project's default TOPIC_PARTITIONS
CDP_TOKEN = "bench-cdp-token-0123456789"  # noqa: S105 - the stand-in CDP's, made up
SOURCES_KEY = generate_key()


# -- figures --------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One measured quantity over the runs, with the baseline's runs beside it when
    there is one; `ratio` is per run (measured / baseline), so both saw the same moment
    of the machine."""

    part: str
    name: str
    unit: str
    runs: list[float]
    baseline: list[float] = field(default_factory=list)
    baseline_name: str = ""
    target: str = ""
    higher_is_better: bool = True

    @property
    def ratios(self) -> list[float]:
        return [run / base for run, base in zip(self.runs, self.baseline, strict=False) if base]

    def as_json(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "name": self.name,
            "unit": self.unit,
            "runs": self.runs,
            **spread("", self.runs),
            "baseline_name": self.baseline_name,
            "baseline_runs": self.baseline,
            **spread("baseline_", self.baseline),
            "ratio_runs": self.ratios,
            **spread("ratio_", self.ratios),
            "target": self.target,
        }


def spread(prefix: str, values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {f"{prefix}median": None, f"{prefix}min": None, f"{prefix}max": None}
    return {
        f"{prefix}median": statistics.median(values),
        f"{prefix}min": min(values),
        f"{prefix}max": max(values),
    }


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def bar(total: int | None, what: str, unit: str = "msg") -> "tqdm[Any]":
    return tqdm(total=total, desc=f"  {what}", unit=unit, leave=False, dynamic_ncols=True)


def say(message: str) -> None:
    tqdm.write(message)


# -- topics ---------------------------------------------------------------------------


def bench_settings(bootstrap: str, prefix: str | None = None, **overrides: Any) -> Settings:
    prefix = prefix or f"bench-{uuid.uuid4().hex[:8]}."
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        topic_partitions=PARTITIONS,
        app_id=f"{prefix}worker",
        **overrides,
    )


async def create_topics(settings: Settings, *extra: str) -> None:
    wanted = desired_topics(settings) + [
        DesiredTopic(settings.topic(name), PARTITIONS, {}) for name in extra
    ]
    await asyncio.wait_for(set_up_topics(settings, wanted), 120)


async def delete_topics(settings: Settings) -> None:
    async with admin_client(settings) as admin:
        ours = [
            name for name in await admin.list_topics() if name.startswith(settings.topic_prefix)
        ]
        if ours:
            await admin.delete_topics(ours)


@asynccontextmanager
async def topics_of(settings: Settings, *extra: str) -> AsyncIterator[Settings]:
    """The deployment's topics under a fresh prefix, deleted afterwards to free the disk."""
    await create_topics(settings, *extra)
    try:
        yield settings
    finally:
        await asyncio.wait_for(delete_topics(settings), 60)


# -- Kafka ----------------------------------------------------------------------------

Record = tuple[bytes | None, bytes | None, int | None]  # key, value, partition (None: by key)


async def produce(bootstrap: str, topic: str, records: Iterable[Record], total: int) -> None:
    """As fast as the client can: large batches, many sends in flight, all confirmed."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        with bar(total, f"pre-load {topic}") as progress:
            for key, value, partition in records:
                pending.append(
                    await producer.send(topic, value=value, key=key, partition=partition)
                )
                if len(pending) >= 20_000:
                    await asyncio.gather(*pending)
                    progress.update(len(pending))
                    pending = []
            await asyncio.gather(*pending)
            progress.update(len(pending))
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def wait_for_count(
    bootstrap: str,
    topic: str,
    start: dict[int, int],
    target: int,
    timeout: float,
    what: str,
    alive: Callable[[], None] | None = None,
) -> None:
    """Until `topic` holds `target` records past `start`, polling its end offsets (cheap
    for the broker, nothing for the process being measured)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    deadline = time.monotonic() + timeout
    try:
        with bar(target, what) as progress:
            while True:
                ends = await consumer.end_offsets(partitions)
                done = sum(ends[tp] - start.get(tp.partition, 0) for tp in partitions)
                progress.update(min(done, target) - progress.n)
                if done >= target:
                    return
                if alive:
                    alive()
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out after {timeout:.0f} s: {done}/{target} {what}")
                await asyncio.sleep(0.25)
    finally:
        await consumer.stop()


async def timestamps(bootstrap: str, topic: str, start: dict[int, int]) -> list[float]:
    """The CreateTime (s) of every record of `topic` past `start`, read after the fact."""
    return [stamp for stamp, _value in await stamped_values(bootstrap, topic, start)]


async def stamped_values(
    bootstrap: str, topic: str, start: dict[int, int]
) -> list[tuple[float, bytes | None]]:
    """The CreateTime (s) and value of every record of `topic` past `start`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, start.get(tp.partition, 0))
        found: list[tuple[float, bytes | None]] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=500, max_records=50_000)).values():
                found += [(record.timestamp / 1000, record.value) for record in records]
        return found
    finally:
        await consumer.stop()


# -- processes ------------------------------------------------------------------------


@dataclass
class Child:
    """A process of ours being measured, with its log kept for when it fails."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: "subprocess.Popen[bytes] | None" = None
    started_at: float = 0.0

    def start(self) -> "Child":
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.popen = subprocess.Popen(  # noqa: S603 - our own command
            self.argv, cwd=REPO, env=self.env, stdout=log, stderr=log
        )
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.popen.pid

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def worker_env(settings: Settings, workdir: Path, cdp_url: str, **extra: str) -> dict[str, str]:
    """The worker's environment, as the integration tests configure it."""
    sources = workdir / "sources.yaml"
    if not sources.exists():
        from bench.webhooks import SOURCES_YAML

        sources.write_text(SOURCES_YAML)
    return (
        dict(os.environ)
        | {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "TOPIC_PREFIX": settings.topic_prefix,
            "TOPIC_PARTITIONS": str(settings.topic_partitions),
            "APP_ID": settings.app_id,
            "WORKER_DATA_DIR": str(workdir / "worker-data"),
            # An ingress locks its spool directory: each run's its own, never the repo's.
            "INGRESS_SPOOL_DIR": str(workdir / "ingress-spool"),
            "WORKER_METRICS_PORT": "0",
            "WORKER_SESSION_TIMEOUT_S": "6",
            "SOURCES_FILE": str(sources),
            # One key for every process of the run: the worker decrypts what the ingress
            # wrote to the sources topic.
            "SOURCES_ENCRYPTION_KEYS": SOURCES_KEY,
            "CDP_URL": cdp_url,
            "CDP_TOKEN": CDP_TOKEN,
            "CDP_MAX_BACKOFF_S": "1",
            "LOG_LEVEL": "INFO",
        }
        | extra
    )


def _proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return dict(line.split(":", 1) for line in status if ":" in line)


def rss_mib(pid: int, peak: bool = False) -> float:
    """VmRSS now, or VmHWM: the most resident memory the process ever had."""
    try:
        return int(_proc_status(pid)["VmHWM" if peak else "VmRSS"].split()[0]) / 1024
    except (OSError, KeyError):
        return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_mib(path: Path) -> float:
    total = sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file())
    return total / 1024**2


async def wait_until(
    probe: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(interval)


async def seed_sources(settings: Settings, workdir: Path) -> None:
    """The sources file imported into the sources topic, as an ingress does at its start:
    a worker reads its sources from that topic only."""
    import aiohttp

    from harness.pipeline import free_port

    port = free_port()
    env = worker_env(settings, workdir, "") | {
        "INGRESS_PORT": str(port),
        "INGRESS_SPOOL_DIR": str(workdir / "seed-spool"),
    }
    ingress = Child("seeding ingress", python("ingress.main"), env, workdir / "seed.log").start()
    try:
        async with aiohttp.ClientSession() as session:

            async def ready() -> bool:
                ingress.check_alive()
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(ready, 60, "the ingress to seed the sources", 0.2)
    finally:
        ingress.stop()
