from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.pipeline import Pipeline, running_pipeline

SOURCES_YAML = """
sources:
  - id: shop
    api_key: shop-api-key-0123456789
    exchange_rate: "1.5"
    currency: USD
    default_country: US
    status_map:
      Leads:
        Lost Lead: LeadLost
  - id: yen
    api_key: yen-api-key-0123456789
    exchange_rate: "150.123"
    currency: JPY
"""
SHOP_KEY = "shop-api-key-0123456789"


@pytest.fixture(scope="package")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    workdir: Path = tmp_path_factory.mktemp("pipeline")
    with running_pipeline(
        kafka_bootstrap, workdir, SOURCES_YAML, worker_module="tests.integration.faulty_worker"
    ) as running:
        yield running
        for process in running.processes.values():
            print(f"--- {process.name} log tail ---\n{process.log_tail()}")  # noqa: T201
