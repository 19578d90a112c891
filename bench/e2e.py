"""The pipeline end to end on a real broker, and what the broker alone does with the same bytes.

Webhooks go over HTTP to the ingress subprocess; the worker subprocess turns them into
conversions that reach the stand-in CDP, which notes when each arrives. The baseline
sends the same envelope bytes straight to a topic with the ingress's producer settings
and the same concurrency, and reads them back with a plain consumer."""

import asyncio
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from bench.broker import Broker
from bench.webhooks import API_KEYS, SOURCES_YAML, Webhook, converting_webhooks, envelope, kafka_key
from harness.pipeline import CdpThread, Pipeline, free_port, ingress_ready, wait_for
from ingress.kafka import new_producer
from schemas.settings import Settings
from sources.crypto import generate_key
from streams.commands.topic_plan import DesiredTopic, desired_topics
from streams.commands.topics import set_up_topics
from streams.kafka_admin import admin_client

Progress = Callable[[str], None]
Item = TypeVar("Item")

PARTITIONS = 3  # the project's default TOPIC_PARTITIONS
CDP_TOKEN = "bench-cdp-token-0123456789"  # noqa: S105 - the stand-in CDP's, made up
BASELINE_TOPIC = "bench.broker-baseline"
START_TIMEOUT_S = 120  # the worker's first conversion: Faust joins its group first
REQUEST_TIMEOUT_S = 30
IDLE_SAMPLES = 20
SERIAL_SENDS = 1000


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


@dataclass(frozen=True)
class Latencies:
    p50: float
    p95: float
    p99: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "Latencies":
        return cls(*(percentile(seconds, share) * 1000 for share in (0.50, 0.95, 0.99)))


@dataclass(frozen=True)
class BrokerBaseline:
    produce_rate: float
    produce_ms: Latencies
    serial_rate: float  # one send in flight
    serial_ms: Latencies
    through_rate: float  # produced and consumed, both running
    through_ms: Latencies
    consume_rate: float  # reading back what is already there
    broker_cpu_s: float  # producing and consuming, both running; NaN: not our broker


@dataclass(frozen=True)
class ProcessFigures:
    peak_rss_mib: float
    cpu_s: float  # during the load


@dataclass(frozen=True)
class PipelineRun:
    posted: int
    accepted: int
    accept_rate: float
    accept_ms: Latencies
    delivered: int
    e2e_rate: float
    e2e_ms: Latencies
    drain_rate: float
    idle_ms: Latencies  # one webhook at a time: no backlog
    worker_start_s: float
    processes: dict[str, ProcessFigures]


@dataclass(frozen=True)
class E2EResults:
    webhooks: int
    concurrency: int
    baseline: BrokerBaseline
    pipeline: PipelineRun


def run(broker: Broker, count: int, concurrency: int, progress: Progress) -> E2EResults:
    return asyncio.run(_run(broker, count, concurrency, progress))


async def _run(broker: Broker, count: int, concurrency: int, progress: Progress) -> E2EResults:
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    settings = Settings(
        kafka_bootstrap_servers=broker.bootstrap,
        topic_prefix=prefix,
        topic_partitions=PARTITIONS,
        app_id=f"{prefix}worker",
    )
    hooks = list(converting_webhooks(count))
    progress(f"topics under prefix {prefix!r} on {broker.bootstrap}")
    baseline_topic = settings.topic(BASELINE_TOPIC)
    try:
        await asyncio.wait_for(
            set_up_topics(
                settings,
                desired_topics(settings) + [DesiredTopic(baseline_topic, PARTITIONS, {})],
            ),
            60,
        )
        # Before the pipeline's processes start, so nothing else competes for the CPU.
        baseline = await broker_baseline(
            settings, baseline_topic, hooks, concurrency, progress, broker.pid
        )
        with pipeline_processes(broker.bootstrap, settings) as pipeline:
            measured = await measure_pipeline(pipeline, broker, hooks, concurrency, progress)
    finally:
        if broker.pid is None:
            # Someone else's broker: leave it as it was found.
            await asyncio.wait_for(delete_topics(settings, prefix), 30)
    return E2EResults(count, concurrency, baseline, measured)


# -- the broker alone ----------------------------------------------------------------


async def broker_baseline(
    settings: Settings,
    topic: str,
    hooks: Sequence[Webhook],
    concurrency: int,
    progress: Progress,
    broker_pid: int | None,
) -> BrokerBaseline:
    now = datetime.now(UTC)
    messages = [(kafka_key(hook), envelope(hook, now).model_dump_json().encode()) for hook in hooks]
    count = len(messages)
    progress(f"broker baseline: {count} envelopes, {concurrency} sends in flight")
    expected = {value for _, value in messages}
    received: dict[bytes, float] = {}
    sent_at: dict[bytes, float] = {}

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.aiokafka_security(),
    )
    producer = new_producer(settings)

    async def consume() -> None:
        while len(received) < count:
            batches = await consumer.getmany(timeout_ms=200)
            at = time.perf_counter()
            for records in batches.values():
                for record in records:
                    if record.value in expected:
                        received.setdefault(record.value, at)

    async def send(key: bytes, value: bytes) -> float:
        sent_at[value] = started = time.perf_counter()
        await asyncio.wait_for(
            producer.send_and_wait(topic, value=value, key=key), REQUEST_TIMEOUT_S
        )
        return time.perf_counter() - started

    async with AsyncExitStack() as stack:
        await producer.start()
        stack.push_async_callback(producer.stop)
        # A new topic's partitions may still be electing leaders, and a fresh broker's JIT
        # is cold: an untimed round of the same sends keeps both out of the figures.
        for partition in range(PARTITIONS):
            await asyncio.wait_for(
                producer.send_and_wait(topic, value=b"warm-up", partition=partition), 30
            )
        warm_up = [(key, b"warm-up " + value) for key, value in messages]
        await _in_flight(concurrency, warm_up, lambda pair: send(*pair), None)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        await wait_for(lambda: _truthy(consumer.assignment()), 30, f"partitions of {topic}")
        reading = asyncio.create_task(consume())
        stack.callback(reading.cancel)
        sent_at.clear()
        progress("broker baseline: warmed up; timing")
        broker_cpu = cpu_seconds(broker_pid) if broker_pid else math.nan
        first = time.perf_counter()
        produce_s = await _in_flight(
            concurrency, messages, lambda pair: send(*pair), ("sent", progress)
        )
        produced = time.perf_counter()
        await _deadline(reading, 60, "the baseline consumer to read every envelope")
        broker_cpu = (cpu_seconds(broker_pid) if broker_pid else math.nan) - broker_cpu
        # What a loop that waits for each send before the next (as the worker's agent
        # does with concurrency=1) can reach at most.
        serial = [(key, b"serial " + value) for key, value in messages[:SERIAL_SENDS]]
        progress(f"broker baseline: {len(serial)} sends one at a time")
        serial_s = await _in_flight(1, serial, lambda pair: send(*pair), None)

    through = [received[value] - sent_at[value] for _, value in messages]
    consume_rate = await consume_all(settings, topic, 2 * count + len(serial) + PARTITIONS)
    return BrokerBaseline(
        produce_rate=count / (produced - first),
        produce_ms=Latencies.of(produce_s),
        serial_rate=len(serial) / sum(serial_s),
        serial_ms=Latencies.of(serial_s),
        through_rate=count / (max(received.values()) - first),
        through_ms=Latencies.of(through),
        consume_rate=consume_rate,
        broker_cpu_s=broker_cpu,
    )


async def consume_all(settings: Settings, topic: str, count: int) -> float:
    """Messages per second a fresh consumer reads the topic from the beginning."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings.aiokafka_security(),
    )
    await consumer.start()
    try:
        await wait_for(lambda: _truthy(consumer.assignment()), 30, f"partitions of {topic}")
        partitions = list(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        read = 0

        async def read_all() -> None:
            nonlocal read
            while read < count:
                batches = await consumer.getmany(timeout_ms=200)
                read += sum(len(records) for records in batches.values())

        started = time.perf_counter()
        await _deadline(asyncio.create_task(read_all()), 60, "the topic to be read back")
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# -- the pipeline ---------------------------------------------------------------------


@dataclass
class Arrivals:
    """When each conversion reached the stand-in CDP, by cdp_id (set on the CDP's thread)."""

    at: dict[str, float] = field(default_factory=dict)

    async def respond(self, events: list[dict[str, Any]]) -> web.Response | None:
        now = time.perf_counter()
        for event in events:
            self.at.setdefault(event["cdp_id"], now)
        return None  # the stand-in answers as usual


@contextmanager
def pipeline_processes(bootstrap: str, settings: Settings) -> Iterator[Pipeline]:
    """The ingress and the worker as subprocesses, configured as the integration tests
    configure them (tests/integration/harness.py `running_pipeline`)."""
    workdir = Path(tempfile.mkdtemp(prefix="zoho-cdp-bench-"))
    (workdir / "sources.yaml").write_text(SOURCES_YAML)
    cdp = CdpThread(token=CDP_TOKEN)
    cdp.start()
    ingress_port = free_port()
    env = dict(os.environ) | {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": settings.topic_prefix,
        "TOPIC_PARTITIONS": str(settings.topic_partitions),
        "APP_ID": settings.app_id,
        "WORKER_DATA_DIR": str(workdir / "worker-data"),
        "WORKER_METRICS_PORT": "0",
        "WORKER_SESSION_TIMEOUT_S": "6",
        "SOURCES_FILE": str(workdir / "sources.yaml"),
        "SOURCES_ENCRYPTION_KEYS": generate_key(),
        "INGRESS_PORT": str(ingress_port),
        "INGRESS_SPOOL_DIR": str(workdir / "ingress-spool"),
        "CDP_URL": cdp.url,
        "CDP_TOKEN": CDP_TOKEN,
        "CDP_BATCH_WAIT_S": "0.3",
        "CDP_MAX_BACKOFF_S": "1",
        "LOG_LEVEL": "INFO",
    }
    pipeline = Pipeline(bootstrap, settings.topic_prefix, env, cdp, ingress_port, workdir)
    failed = True
    try:
        pipeline.process("ingress", "ingress.main").start()
        pipeline.process("worker", "streams.main").start()
        yield pipeline
        failed = False
    finally:
        for process in pipeline.processes.values():
            process.stop()
        cdp.stop()
        if failed:
            for process in pipeline.processes.values():
                print(f"--- {process.name} log tail ({process.log_path}) ---\n{process.log_tail()}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def measure_pipeline(
    pipeline: Pipeline,
    broker: Broker,
    hooks: Sequence[Webhook],
    concurrency: int,
    progress: Progress,
) -> PipelineRun:
    arrivals = Arrivals()
    pipeline.cdp.cdp.respond = arrivals.respond
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        progress("pipeline: waiting for the ingress and the worker")
        await wait_for(lambda: ingress_ready(pipeline), 60, "the ingress to be ready")
        # One conversion through everything first: the worker has joined its group, and
        # the figures that follow measure the pipeline, not Faust's start-up.
        [warm] = converting_webhooks(1, first_record=90_000_000, seed=1)
        await post_and_wait(session, pipeline, arrivals, warm, START_TIMEOUT_S)
        ready_s = time.perf_counter() - started
        progress(f"pipeline: ready after {ready_s:.1f} s; {IDLE_SAMPLES} webhooks one at a time")
        idle = [
            await post_and_wait(session, pipeline, arrivals, hook, 30)
            for hook in converting_webhooks(IDLE_SAMPLES, first_record=91_000_000, seed=2)
        ]
        progress(f"pipeline: posting {len(hooks)} webhooks, {concurrency} in flight")
        pids = {name: p.popen.pid for name, p in pipeline.processes.items() if p.popen}
        pids["bench (client + CDP)"] = os.getpid()
        if broker.pid is not None:
            pids["broker"] = broker.pid
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        load = await post_load(session, pipeline, arrivals, hooks, concurrency, progress)
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    return PipelineRun(
        posted=len(hooks),
        accepted=len(load.accepted),
        accept_rate=len(load.accepted) / (load.last_answer - load.first_post),
        accept_ms=Latencies.of(list(load.accepted.values())),
        delivered=len(load.arrived),
        e2e_rate=len(load.arrived) / (max(load.arrived.values()) - load.first_post),
        e2e_ms=Latencies.of([at - load.sent_at[key] for key, at in load.arrived.items()]),
        drain_rate=load.drain_rate(),
        idle_ms=Latencies.of(idle),
        worker_start_s=ready_s,
        processes={
            name: ProcessFigures(peak_rss_mib(pid), cpu_after[name] - cpu_before[name])
            for name, pid in pids.items()
        },
    )


async def post_and_wait(
    session: aiohttp.ClientSession,
    pipeline: Pipeline,
    arrivals: Arrivals,
    hook: Webhook,
    timeout: float,
) -> float:
    """Seconds from posting `hook` to its conversion at the CDP."""
    begun = time.perf_counter()
    status, _ = await post(session, pipeline, hook)
    if status != 202:
        raise RuntimeError(f"the ingress answered {status} to a valid webhook")
    await wait_for(
        lambda: _truthy(hook.cdp_id in arrivals.at), timeout, f"the conversion of {hook.cdp_id}"
    )
    return arrivals.at[hook.cdp_id] - begun


@dataclass(frozen=True)
class Load:
    first_post: float
    last_answer: float
    sent_at: dict[str, float]
    accepted: dict[str, float]  # cdp_id: seconds to the 202
    arrived: dict[str, float]  # cdp_id: when its conversion reached the CDP

    def drain_rate(self) -> float:
        """Conversions per second once every webhook was accepted: the worker working
        off the backlog with the ingress idle."""
        late = sorted(at for at in self.arrived.values() if at > self.last_answer)
        if len(late) < 2:
            return math.nan
        return len(late) / (late[-1] - self.last_answer)


async def post_load(
    session: aiohttp.ClientSession,
    pipeline: Pipeline,
    arrivals: Arrivals,
    hooks: Sequence[Webhook],
    concurrency: int,
    progress: Progress,
) -> Load:
    sent_at: dict[str, float] = {}
    answered_at: list[float] = []

    async def send(hook: Webhook) -> float:
        sent_at[hook.cdp_id] = begun = time.perf_counter()
        status, _ = await post(session, pipeline, hook)
        answered_at.append(time.perf_counter())
        return answered_at[-1] - begun if status == 202 else -1.0

    first = time.perf_counter()
    answers = await _in_flight(concurrency, hooks, send, ("accepted", progress))
    accepted = {
        hook.cdp_id: seconds for hook, seconds in zip(hooks, answers, strict=True) if seconds >= 0
    }
    progress(f"pipeline: {len(accepted)} accepted; waiting for their conversions at the CDP")
    await _wait_counting(
        lambda: sum(1 for cdp_id in accepted if cdp_id in arrivals.at),
        len(accepted),
        max(60.0, len(hooks) / 20),
        "conversions at the CDP",
        progress,
    )
    return Load(
        first_post=first,
        last_answer=max(answered_at),
        sent_at=sent_at,
        accepted=accepted,
        arrived={cdp_id: arrivals.at[cdp_id] for cdp_id in accepted},
    )


async def post(
    session: aiohttp.ClientSession, pipeline: Pipeline, hook: Webhook
) -> tuple[int, bytes]:
    """A Zoho-style form post; 0 when no answer came."""
    try:
        async with session.post(
            pipeline.source_url(hook.source_id),
            params={"api_key": API_KEYS[hook.source_id]},
            data=hook.fields,
        ) as response:
            return response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return 0, b""


# -- processes ------------------------------------------------------------------------


def _proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return dict(line.split(":", 1) for line in status if ":" in line)


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    try:
        return int(_proc_status(pid)["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError):
        return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # Fields after the command name, which may hold spaces: utime is 14th overall.
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- helpers --------------------------------------------------------------------------


async def _in_flight(
    concurrency: int,
    items: Sequence[Item],
    call: Callable[[Item], Awaitable[float]],
    counter: tuple[str, Progress] | None,
) -> list[float]:
    """`call` on every item, `concurrency` at a time, results in item order; with a
    counter, a progress line every tenth."""
    results = [0.0] * len(items)
    queue = iter(enumerate(items))
    step = max(1, len(items) // 10)
    done = 0

    async def lane() -> None:
        nonlocal done
        for index, item in queue:
            results[index] = await call(item)
            done += 1
            if counter and done % step == 0:
                verb, progress = counter
                progress(f"  {done}/{len(items)} {verb}")

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results


async def _wait_counting(
    counted: Callable[[], int], target: int, timeout: float, what: str, progress: Progress
) -> None:
    step = max(1, target // 10)
    shown = 0

    async def probe() -> bool:
        nonlocal shown
        now = counted()
        if now // step > shown // step or now >= target > shown:
            progress(f"  {now}/{target} {what}")
            shown = now
        return now >= target

    await wait_for(probe, timeout, f"{target} {what}")


async def _deadline(task: "asyncio.Task[None]", timeout: float, what: str) -> None:
    try:
        await asyncio.wait_for(task, timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None


async def _truthy(value: object) -> bool:
    return bool(value)


async def delete_topics(settings: Settings, prefix: str) -> None:
    async with admin_client(settings) as admin:
        ours = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
