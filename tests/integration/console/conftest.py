"""A running pipeline with the console on, and a signed-in HTTP client for it."""

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from harness.pipeline import Pipeline, free_port, ingress_ready, running_pipeline, wait_for

ADMIN_TOKEN = "console-admin-token-0123456789"
SHOP_KEY = "shop-api-key-0123456789"
SOURCES_YAML = """
sources:
  - id: shop
    api_key: shop-api-key-0123456789
    exchange_rate: "1.5"
    currency: USD
    default_country: US
"""
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="package")
def console_pipeline(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    workdir: Path = tmp_path_factory.mktemp("console")
    env = {"ADMIN_TOKEN": ADMIN_TOKEN, "WORKER_METRICS_PORT": str(free_port())}
    with running_pipeline(kafka_bootstrap, workdir, SOURCES_YAML, extra_env=env) as running:
        asyncio.run(wait_for(lambda: ingress_ready(running), 60, "the ingress to be ready"))
        yield running
        for process in running.processes.values():
            print(f"--- {process.name} log tail ---\n{process.log_tail()}")  # noqa: T201


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1)


class ConsoleClient:
    """A browser-like client: a cookie jar, reading the CSRF token off each page."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.base = pipeline.base_url
        # unsafe: keep cookies for 127.0.0.1, as a browser does.
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def get(self, path: str, **options: object) -> tuple[int, str]:
        async with self.session.get(self.base + path, **options) as response:  # type: ignore[arg-type]
            return response.status, await response.text()

    async def post(
        self, path: str, form: dict[str, str], csrf_from: str | None = None
    ) -> tuple[int, str]:
        if csrf_from is not None:
            _, page = await self.get(csrf_from)
            form = form | {"csrf_token": csrf_of(page)}
        async with self.session.post(self.base + path, data=form) as response:
            return response.status, await response.text()

    async def sign_in(self, token: str = ADMIN_TOKEN) -> tuple[int, str]:
        return await self.post("/console/sign-in", {"token": token}, csrf_from="/console/sign-in")

    async def close(self) -> None:
        await self.session.close()
