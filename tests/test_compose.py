"""docker-compose.yml and the Dockerfile stay in step with the project they run."""

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
APP_SERVICES = ("topics", "ingress", "worker")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return dict(compose["services"])


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(pyproject["project"]["scripts"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment, whichever of compose's two spellings it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: str(value) for name, value in env.items()}


def command(service: dict[str, Any]) -> str:
    cmd = service["command"]
    return str(cmd.split()[0] if isinstance(cmd, str) else cmd[0])


def healthcheck(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def test_the_four_services(services: dict[str, Any]) -> None:
    assert set(services) == {"kafka", "topics", "ingress", "worker"}


def test_kafka_is_a_single_kraft_node_with_a_health_check(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.2"
    env = environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    for setting in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[setting] == "1", setting
    check = healthcheck(kafka)
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in check
    assert "--bootstrap-server localhost:9092" in check


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_a_declared_console_script_from_the_image(
    services: dict[str, Any], scripts: dict[str, str], name: str
) -> None:
    service = services[name]
    build = service["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    assert (REPO / context / "Dockerfile").is_file()
    assert command(service) == f"zoho-cdp-{name}"
    assert command(service) in scripts
    assert environment(service)["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


def test_pyproject_declares_every_console_script(scripts: dict[str, str]) -> None:
    expected = {"ingress", "worker", "topics", "replay", "stand-in-cdp"}
    assert {f"zoho-cdp-{name}" for name in expected} <= set(scripts)


def test_topics_runs_once_kafka_is_healthy(services: dict[str, Any]) -> None:
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["topics"].get("restart", "no") == "no"


@pytest.mark.parametrize("name", ["ingress", "worker"])
def test_ingress_and_worker_start_after_the_topics_exist(
    services: dict[str, Any], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    assert depends_on["topics"]["condition"] == "service_completed_successfully"


def test_ingress_serves_port_8080_with_a_health_check(services: dict[str, Any]) -> None:
    ingress = services["ingress"]
    assert "8080:8080" in [str(port) for port in ingress["ports"]]
    env = environment(ingress)
    # 127.0.0.1 in a container is unreachable from outside it.
    assert env["INGRESS_HOST"] == "0.0.0.0"  # noqa: S104
    assert env["SOURCES_FILE"] == "/config/sources.yaml"
    check = healthcheck(ingress)
    assert "urllib" in check
    assert "http://localhost:8080/healthz" in check


def test_worker_environment(services: dict[str, Any]) -> None:
    env = environment(services["worker"])
    assert {"KAFKA_BOOTSTRAP_SERVERS", "SOURCES_ENCRYPTION_KEYS", "CDP_URL", "CDP_TOKEN"} <= set(
        env
    )
    # The worker reads its sources from the sources topic only.
    assert "SOURCES_FILE" not in env


@pytest.mark.parametrize("name", ["ingress", "worker"])
def test_the_sources_key_is_required(services: dict[str, Any], name: str) -> None:
    assert ":?" in environment(services[name])["SOURCES_ENCRYPTION_KEYS"]


@pytest.mark.parametrize("name", ["ingress"])
def test_sources_file_is_mounted_read_only_with_its_secrets_set(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert "./examples/sources.yaml:/config/sources.yaml:ro" in service["volumes"]
    sources = yaml.safe_load((REPO / "examples" / "sources.yaml").read_text())
    referenced = set(re.findall(r"\$\{(\w+)\}", str(sources)))  # values only, no comments
    assert referenced <= set(environment(service)), "sources.yaml reads unset variables"


def test_dockerfile_installs_the_project_as_a_non_root_user() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("RUN pip install .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def test_dockerfile_copies_every_package(scripts: dict[str, str]) -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")}
    packages = {target.split(".")[0] for target in scripts.values()}
    assert packages <= copied
