"""A throwaway Apache Kafka broker of this process's, from `broker/kafka.sh`, for the
tests and the benchmark."""

import os
import socket
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "broker" / "kafka.sh"


def broker_environment(home: Path, kafka_port: int, controller_port: int) -> dict[str, str]:
    """What `broker/kafka.sh` needs to run a throwaway broker of this process's."""
    return os.environ | {
        "BROKER_HOME": str(home),
        # One jar cache for every broker, so the download happens once per machine.
        "KAFKA_LIBS_DIR": str(REPO / ".broker" / "libs"),
        "KAFKA_PORT": str(kafka_port),
        "CONTROLLER_PORT": str(controller_port),
        "KAFKA_FRESH": "1",
        # The broker stops itself if this process dies without tearing down.
        "KAFKA_OWNER_PID": str(os.getpid()),
    }


def free_ports(count: int) -> list[int]:
    # All sockets stay open until every port is picked, so the ports differ.
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
