"""Pytest plugin: a real Apache Kafka broker for the test session.

`kafka_bootstrap` gives "host:port" of, in this order of preference:
1. the cluster named by KAFKA_BOOTSTRAP_SERVERS;
2. a throwaway KRaft container, when a Docker engine answers;
3. the project's own broker (`broker/kafka.sh`) on free ports, which needs only Java.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from harness.broker import KAFKA_SH, REPO, broker_environment, free_ports

# Confluent Platform 7.9 ships Apache Kafka 3.9, the version broker/pom.xml runs.
CONTAINER_IMAGE = "confluentinc/cp-kafka:7.9.0"


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
    elif docker_answers():
        with kafka_container() as bootstrap:
            yield bootstrap
    else:
        with local_broker(request.config) as bootstrap:
            yield bootstrap


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - no SDK, no socket, or an engine that does not answer
        return False
    return True


@contextmanager
def kafka_container() -> Iterator[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers before 4.14
        from testcontainers.kafka import KafkaContainer

    container = (
        KafkaContainer(CONTAINER_IMAGE)
        .with_kraft()
        # Single broker: the transaction log must not ask for three replicas.
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        # Topics exist only when the code under test creates them, as in production.
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    with container:
        yield container.get_bootstrap_server()


@contextmanager
def local_broker(config: pytest.Config) -> Iterator[str]:
    kafka_port, controller_port = free_ports(2)
    home = REPO / ".broker" / f"pytest-{kafka_port}"
    env = broker_environment(home, kafka_port, controller_port)

    def kafka_sh(command: str) -> None:
        # The script's progress (a first run downloads Kafka) goes to the terminal even
        # while pytest captures output.
        with ExitStack() as stack:
            capture = config.pluginmanager.getplugin("capturemanager")
            if capture is not None:
                stack.enter_context(capture.global_and_fixture_disabled())
            subprocess.run([str(KAFKA_SH), command], env=env, check=True)  # noqa: S603 - our own command

    try:
        kafka_sh("start")
        yield f"127.0.0.1:{kafka_port}"
    finally:
        kafka_sh("stop")
    # Reached only when start-up succeeded; a failed start keeps its log for a look.
    shutil.rmtree(home, ignore_errors=True)
