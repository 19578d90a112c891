"""The real things the chaos suite breaks: a Kafka broker of its own, the ingress and
worker processes, and a stand-in CDP that can fail on demand and counts what it got."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from harness.broker import KAFKA_SH, REPO, broker_environment, free_ports
from harness.pipeline import ADMIN_TOKEN, CdpThread, wait_for
from sources.crypto import generate_key

BIN = Path(sys.executable).parent
CDP_TOKEN = "chaos-cdp-token-0123456789"
# Topics the worker group reads: "caught up" means committed up to their ends.
CONSUMED = ("zoho.webhooks.raw", "zoho.webhooks.replay", "cdp.conversions")


class Broker:
    """A single-node broker on free ports that can be SIGKILLed and restarted on its data."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port, self.controller_port = free_ports(2)
        self.log = home / "kafka-sh.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _kafka_sh(self, command: str, fresh: bool = False) -> None:
        env = broker_environment(self.home, self.port, self.controller_port)
        env["KAFKA_FRESH"] = "1" if fresh else "0"
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            subprocess.run(  # noqa: S603 - our own command
                [str(KAFKA_SH), command], env=env, stdout=log, stderr=log, check=True, timeout=240
            )

    def start(self, fresh: bool = False) -> None:
        self._kafka_sh("start", fresh)

    def stop(self) -> None:
        self._kafka_sh("stop")

    def kill(self) -> None:
        """SIGKILL: no flush, no controlled shutdown; the data directory stays."""
        pid = int((self.home / f"kafka-{self.port}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid):
            if time.monotonic() > deadline:
                raise AssertionError(f"broker pid {pid} still alive after SIGKILL")
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@dataclass
class Proc:
    """One pipeline process; its output goes to a log file kept for a post-mortem."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"=== start {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(  # noqa: S603 - our own command
                self.argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        if self.popen is not None and self.alive:
            self.popen.kill()
            self.popen.wait(30)

    def terminate(self, grace_s: float) -> bool:
        """SIGTERM, then SIGKILL after the grace period, as an orchestrator does.
        True when the process exited within the grace period."""
        if self.popen is None or not self.alive:
            return True
        self.popen.terminate()
        try:
            self.popen.wait(grace_s)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    async def exited(self, timeout: float) -> None:
        """Returns once the process has ended on its own."""

        async def ended() -> bool:
            return not self.alive

        await wait_for(ended, timeout, f"{self.name} to exit")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class FaultyCdp:
    """The stand-in CDP, switchable between up, answering 503 and hanging, with the
    arrival times of every event it accepted (a duplicate is a second arrival)."""

    def __init__(self) -> None:
        self._server = CdpThread(token=CDP_TOKEN)
        self._server.cdp.respond = self._respond
        self.url = self._server.url
        self.mode = "up"
        self.failed_requests = 0
        self.arrivals: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self.mode = "up"
        self._server.stop()

    async def _respond(self, events: list[dict[str, Any]]) -> web.Response | None:
        hung = self.mode == "hang"
        while self.mode == "hang":
            await asyncio.sleep(0.05)
        # A request that hung has been given up on by the sink long ago: not delivered.
        if hung or self.mode != "up":
            self.failed_requests += 1
            return web.json_response({"error": "unavailable"}, status=503)
        now = time.monotonic()
        with self._lock:
            for event in events:
                self.arrivals.setdefault(event["event_id"], []).append(now)
        return None

    def delivered(self) -> dict[str, list[float]]:
        with self._lock:
            return {event_id: list(times) for event_id, times in self.arrivals.items()}


@dataclass
class Pipeline:
    """One scenario's pipeline: its own topics (by prefix) and group on the shared broker."""

    broker: Broker
    workdir: Path
    prefix: str
    env: dict[str, str]
    cdp: FaultyCdp
    ingress_port: int
    processes: dict[str, Proc] = field(default_factory=dict)
    keep_topics: bool = False

    @property
    def source_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}/sources/chaos"

    @property
    def group(self) -> str:
        return self.env["APP_ID"]

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def process(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Proc:
        process = Proc(name, argv, self.env | (extra_env or {}), self.workdir / f"{name}.log")
        self.processes[name] = process
        return process

    def start_ingress(self) -> Proc:
        ingress = self.process("ingress", [str(BIN / "zoho-cdp-ingress")])
        ingress.start()
        return ingress

    def start_worker(
        self,
        name: str = "worker",
        module: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Proc:
        argv = [sys.executable, "-m", module] if module else [str(BIN / "zoho-cdp-worker")]
        # Each worker its own data directory, as on separate machines.
        env = {"WORKER_DATA_DIR": str(self.workdir / f"{name}-data")} | (extra_env or {})
        worker = self.process(name, argv, env)
        worker.start()
        return worker

    async def ingress_ready(self) -> bool:
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(
                    f"http://127.0.0.1:{self.ingress_port}/readyz",
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def caught_up(self) -> bool:
        """The group committed every message on the topics it reads. Committed offsets
        are read before end offsets, so a conversion counted as committed was confirmed
        at the CDP before the ends were read."""
        try:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.broker.bootstrap)
            await admin.start()
            try:
                committed = await admin.list_consumer_group_offsets(self.group)
            finally:
                await admin.close()
            partitions = [
                TopicPartition(self.topic(name), p)
                for name in CONSUMED
                for p in range(int(self.env["TOPIC_PARTITIONS"]))
            ]
            end = await self.end_offsets(partitions)
        except Exception:  # noqa: BLE001 - a broker coming back: not caught up yet
            return False
        return all((committed[tp].offset if tp in committed else 0) >= end[tp] for tp in partitions)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.broker.bootstrap)
        await consumer.start()
        try:
            return dict(await consumer.end_offsets(partitions))
        finally:
            await consumer.stop()

    async def topic_size(self, name: str) -> int:
        partitions = [
            TopicPartition(self.topic(name), p) for p in range(int(self.env["TOPIC_PARTITIONS"]))
        ]
        return sum((await self.end_offsets(partitions)).values())

    async def group_members(self) -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.broker.bootstrap)
        await admin.start()
        try:
            [description] = await admin.describe_consumer_groups([self.group])
        finally:
            await admin.close()
        return len(_members(description))

    def tails(self) -> str:
        return "\n".join(
            f"--- {process.name} ({process.log_path}) ---\n{process.log_tail()}"
            for process in self.processes.values()
        )


def _members(description: Any) -> list[Any]:
    """The members of the groups in a DescribeGroups response."""
    return [member for group in description.to_object()["groups"] for member in group["members"]]


@contextmanager
def running_pipeline(
    broker: Broker,
    workdir: Path,
    sources_yaml: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Pipeline]:
    prefix = f"chaos-{workdir.name}."
    sources_file = workdir / "sources.yaml"
    sources_file.write_text(sources_yaml)
    cdp = FaultyCdp()
    cdp.start()
    [ingress_port] = free_ports(1)
    env = (
        dict(os.environ)
        | {
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "TOPIC_PREFIX": prefix,
            "TOPIC_PARTITIONS": "3",
            "APP_ID": f"{prefix}worker",
            "WORKER_METRICS_PORT": "0",
            "WORKER_SESSION_TIMEOUT_S": "6",
            "SOURCES_FILE": str(sources_file),
            "SOURCES_ENCRYPTION_KEYS": generate_key(),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ADMIN_URL": f"http://127.0.0.1:{ingress_port}/admin",
            "INGRESS_PORT": str(ingress_port),
            # Survives an ingress restart: the spool must be drained after a kill -9.
            "INGRESS_SPOOL_DIR": str(workdir / "ingress-spool"),
            "CDP_URL": cdp.url,
            "CDP_TOKEN": CDP_TOKEN,
            "CDP_BATCH_WAIT_S": "0.3",
            "CDP_MAX_BACKOFF_S": "1",
            "LOG_LEVEL": "INFO",
        }
        | (extra_env or {})
    )
    pipeline = Pipeline(broker, workdir, prefix, env, cdp, ingress_port)
    subprocess.run(  # noqa: S603 - our own command
        [str(BIN / "zoho-cdp-topics")],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield pipeline
    finally:
        for process in pipeline.processes.values():
            process.kill()
        cdp.stop()
        # Fewer partitions for the broker to recover after the next kill -9.
        if not pipeline.keep_topics:
            with ThreadPoolExecutor(1) as thread:
                thread.submit(asyncio.run, delete_topics(broker, prefix)).result(120)


async def delete_topics(broker: Broker, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def topic_records(pipeline: Pipeline, name: str) -> list[tuple[int, int, dict[str, Any]]]:
    """(partition, offset, value) of every JSON message of one of the pipeline's topics."""
    topic = pipeline.topic(name)
    partitions = [TopicPartition(topic, p) for p in range(int(pipeline.env["TOPIC_PARTITIONS"]))]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=pipeline.broker.bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: list[tuple[int, int, dict[str, Any]]] = []
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    try:
                        found.append((record.partition, record.offset, json.loads(record.value)))
                    except (TypeError, ValueError):  # a partition marker, say
                        continue
        return found
    finally:
        await consumer.stop()


async def committed_offsets(pipeline: Pipeline) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.broker.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(pipeline.group)
    finally:
        await admin.close()
    return {
        (tp.topic.removeprefix(pipeline.prefix), tp.partition): o.offset
        for tp, o in committed.items()
    }
