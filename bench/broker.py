"""A Kafka broker for the benchmark: the one KAFKA_BOOTSTRAP_SERVERS names, or our own
`broker/kafka.sh` on free ports, stopped and wiped at the end."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.broker import broker_environment, free_ports

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "broker" / "kafka.sh"
START_TIMEOUT_S = 90


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    pid: int | None  # None: a broker we did not start


@contextmanager
def kafka_broker() -> Iterator[Broker]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield Broker(configured, None)
        return
    kafka_port, controller_port = free_ports(2)
    home = REPO / ".broker" / "bench" / str(kafka_port)
    env = broker_environment(home, kafka_port, controller_port) | {
        "KAFKA_START_TIMEOUT": str(START_TIMEOUT_S)
    }

    def kafka_sh(command: str, timeout: float) -> None:
        subprocess.run([str(KAFKA_SH), command], env=env, check=True, timeout=timeout)  # noqa: S603 - our own command

    # A first run downloads Kafka with Maven: its deadline is generous.
    kafka_sh("start", START_TIMEOUT_S + 600)
    try:
        pid_file = home / f"kafka-{kafka_port}.pid"
        yield Broker(f"127.0.0.1:{kafka_port}", int(pid_file.read_text().strip()))
    finally:
        kafka_sh("stop", 60)
    # Reached only when the broker stopped cleanly; a failed run keeps its log.
    shutil.rmtree(home, ignore_errors=True)
