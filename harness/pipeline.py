"""A running pipeline for integration tests: real broker, real processes, real sockets."""

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from harness.broker import free_ports
from sources.crypto import generate_key
from streams.commands.stand_in_cdp import StandInCdp

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
ADMIN_TOKEN = "integration-admin-token-0123456789"  # noqa: S105 - made up for the tests


def free_port() -> int:
    [port] = free_ports(1)
    return port


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 60, what: str = "condition"
) -> T:
    """Polls `probe` until it returns something truthy, failing at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


class CdpThread:
    """The stand-in CDP on its own event loop in a thread, so it outlives test loops."""

    def __init__(self, token: str) -> None:
        self.cdp = StandInCdp(token=token)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/events"
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.cdp.app())
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._started.set()
        self._loop.run_forever()

    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("stand-in CDP did not start")

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shut_down(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shut_down(self) -> None:
        # A test may leave a request hanging on purpose: end it rather than wait.
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is not current:
                task.cancel()
        await self._runner.cleanup()

    def events_for(self, cdp_id: str) -> list[dict[str, Any]]:
        return [event for event in list(self.cdp.delivered) if event["cdp_id"] == cdp_id]


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=log, stderr=log)  # noqa: S603 - our own command

    def stop(self, kill: bool = False) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        if kill:
            self.popen.kill()
        else:
            self.popen.terminate()
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Pipeline:
    bootstrap: str
    prefix: str
    env: dict[str, str]
    cdp: CdpThread
    ingress_port: int
    workdir: Path
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def process(self, name: str, module: str) -> Process:
        # RocksDB locks a data directory to one process: each worker gets its own, named
        # after it, so a restart under the same name finds its table again.
        env = self.env | {"WORKER_DATA_DIR": str(self.workdir / f"{name}-data")}
        process = Process(name, [sys.executable, "-m", module], env, self.workdir / f"{name}.log")
        self.processes[name] = process
        return process

    def source_url(self, source_id: str, port: int | None = None) -> str:
        base = f"http://127.0.0.1:{port}" if port else self.base_url
        return f"{base}/sources/{source_id}"

    async def post(
        self,
        source_id: str,
        api_key: str,
        fields: dict[str, str],
        as_json: bool = False,
        port: int | None = None,
    ) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            options: dict[str, Any] = {"json": fields} if as_json else {"data": fields}
            async with session.post(
                self.source_url(source_id, port), params={"api_key": api_key}, **options
            ) as response:
                return response.status, await response.json(content_type=None)

    async def admin(
        self,
        method: str,
        path: str,
        body: Any = None,
        port: int | None = None,
        token: str | None = ADMIN_TOKEN,
    ) -> tuple[int, Any]:
        """A call of the admin API of the ingress on `port` (the first one by default)."""
        url = f"http://127.0.0.1:{port or self.ingress_port}/admin{path}"
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, json=body, headers=headers) as response:
                text = await response.text()
                return response.status, json.loads(text) if text else None

    def start_ingress(self, name: str, port: int) -> Process:
        """Another ingress replica, on its own port and with its own spool, following the
        same sources topic."""
        process = Process(
            name,
            [sys.executable, "-m", "ingress.main"],
            self.env
            | {"INGRESS_PORT": str(port), "INGRESS_SPOOL_DIR": str(self.workdir / f"{name}-spool")},
            self.workdir / f"{name}.log",
        )
        self.processes[name] = process
        process.start()
        return process

    async def produce_raw(self, value: bytes, key: bytes) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(self.topic("zoho.webhooks.raw"), value=value, key=key)
        finally:
            await producer.stop()

    async def read_topic(self, name: str) -> list[dict[str, Any]]:
        return await read_topic(self.bootstrap, self.topic(name))

    async def read_topic_bytes(self, name: str) -> bytes:
        return await read_topic_bytes(self.bootstrap, self.topic(name))


async def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every message of a topic so far, decoded as JSON."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        # Without a group the consumer takes every partition once it has the metadata.
        await wait_for(lambda: _now(consumer.assignment()), 10, f"partitions of {topic}")
        partitions = list(consumer.assignment())
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        messages: list[dict[str, Any]] = []
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                messages += [json.loads(record.value) for record in records]
        return messages
    finally:
        await consumer.stop()


async def read_topic_bytes(bootstrap: str, topic: str) -> bytes:
    """Every key and value of the topic, as the broker stores them."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        data = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            partitions = list(consumer.assignment())
            if partitions:
                end = await consumer.end_offsets(partitions)
                if all([await consumer.position(tp) >= end[tp] for tp in partitions]):
                    return data
            for records in (await consumer.getmany(timeout_ms=300)).values():
                data += b"".join((r.key or b"") + b"\n" + (r.value or b"") for r in records)
        raise AssertionError(f"could not read {topic} to its end")
    finally:
        await consumer.stop()


async def _now(value: T) -> T:
    return value


@contextmanager
def running_pipeline(
    bootstrap: str,
    workdir: Path,
    sources_yaml: str,
    extra_env: dict[str, str] | None = None,
    worker_module: str = "streams.main",
) -> Iterator[Pipeline]:
    prefix = f"it-{uuid.uuid4().hex[:8]}."
    sources_file = workdir / "sources.yaml"
    sources_file.write_text(sources_yaml or "sources: []\n")
    cdp = CdpThread(token="integration-cdp-token")  # noqa: S106 - the stand-in CDP's
    cdp.start()
    ingress_port = free_port()
    env = (
        dict(os.environ)
        | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TOPIC_PREFIX": prefix,
            "TOPIC_PARTITIONS": "2",
            "APP_ID": f"{prefix}worker",
            "WORKER_DATA_DIR": str(workdir / "worker-data"),
            "WORKER_METRICS_PORT": "0",
            "WORKER_SESSION_TIMEOUT_S": "6",
            "SOURCES_FILE": str(sources_file),
            "SOURCES_ENCRYPTION_KEYS": generate_key(),
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "ADMIN_URL": f"http://127.0.0.1:{ingress_port}/admin",
            "INGRESS_PORT": str(ingress_port),
            "INGRESS_SPOOL_DIR": str(workdir / "ingress-spool"),
            "CDP_URL": cdp.url,
            "CDP_TOKEN": "integration-cdp-token",
            "CDP_BATCH_WAIT_S": "0.3",
            "CDP_MAX_BACKOFF_S": "1",
            "LOG_LEVEL": "INFO",
        }
        | (extra_env or {})
    )
    pipeline = Pipeline(bootstrap, prefix, env, cdp, ingress_port, workdir)
    subprocess.run(
        [sys.executable, "-m", "streams.commands.topics"], cwd=REPO, env=env, check=True, timeout=60
    )
    pipeline.process("ingress", "ingress.main").start()
    pipeline.process("worker", worker_module).start()
    try:
        yield pipeline
    finally:
        for process in pipeline.processes.values():
            process.stop()
        cdp.stop()


async def ingress_ready(pipeline: Pipeline, port: int | None = None) -> bool:
    base = f"http://127.0.0.1:{port}" if port else pipeline.base_url
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/readyz") as response:
                return response.status == 200
    except aiohttp.ClientError:
        return False
