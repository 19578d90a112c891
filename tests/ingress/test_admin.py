"""The admin API's handlers over HTTP, with the store in memory (the Kafka-backed store
and two replicas are in tests/integration/test_sources_live.py)."""

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingress.admin import add_admin_routes
from ingress.app import create_app
from ingress.keys import SETTINGS, SOURCE_STORE, SOURCES
from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.store import StoreUnavailable

TOKEN = "admin-token-for-the-tests-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
Client = TestClient[web.Request, web.Application]


class MemoryStore:
    def __init__(self, sources: dict[str, SourceConfig]) -> None:
        self.sources = sources
        self.down = False

    async def put(self, source: SourceConfig) -> None:
        if self.down:
            raise StoreUnavailable("Kafka did not take the write (KafkaTimeoutError)")
        self.sources[source.id] = source

    async def delete(self, source_id: str) -> None:
        self.sources.pop(source_id)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore({})


@pytest.fixture
async def client(store: MemoryStore) -> AsyncIterator[Client]:
    app = web.Application()
    app[SETTINGS] = Settings(admin_token=TOKEN)
    app[SOURCES] = store.sources
    app[SOURCE_STORE] = store
    assert add_admin_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


async def create(client: Client, **fields: object) -> dict[str, object]:
    body = {"id": "shop", "exchange_rate": "1.5", "currency": "USD"} | fields
    response = await client.post("/admin/sources", json=body, headers=AUTH)
    assert response.status == 201, await response.text()
    answer: dict[str, object] = await response.json()
    return answer


async def test_create_show_list_update_and_delete(client: Client, store: MemoryStore) -> None:
    created = await create(client, client_secret="the-client-secret")
    assert store.sources["shop"].api_key.get_secret_value() == created["api_key"]
    shown = await (await client.get("/admin/sources/shop", headers=AUTH)).json()
    assert "api_key" not in shown and "client_secret" not in shown
    assert shown["secrets_set"]["client_secret"] is True
    listed = await (await client.get("/admin/sources", headers=AUTH)).json()
    assert [source["id"] for source in listed["sources"]] == ["shop"]

    response = await client.patch(
        "/admin/sources/shop", json={"exchange_rate": "2.25"}, headers=AUTH
    )
    assert response.status == 200 and (await response.json())["exchange_rate"] == "2.25"
    assert store.sources["shop"].client_secret.get_secret_value() == "the-client-secret"

    assert (await client.delete("/admin/sources/shop", headers=AUTH)).status == 204
    assert (await client.get("/admin/sources/shop", headers=AUTH)).status == 404


async def test_an_existing_id_is_a_409_and_a_bad_field_a_422(client: Client) -> None:
    await create(client)
    again = await client.post(
        "/admin/sources", json={"id": "shop", "exchange_rate": "1", "currency": "USD"}, headers=AUTH
    )
    assert again.status == 409
    bad = await client.patch("/admin/sources/shop", json={"currency": "EURO"}, headers=AUTH)
    assert bad.status == 422
    assert [p["field"] for p in (await bad.json())["fields"]] == ["currency"]


async def test_rotate_disable_and_enable(client: Client, store: MemoryStore) -> None:
    created = await create(client)
    response = await client.post(
        "/admin/sources/shop/rotate-key", json={"overlap_s": 60}, headers=AUTH
    )
    rotated = await response.json()
    assert response.status == 200 and rotated["api_key"] != created["api_key"]
    ends = datetime.fromisoformat(rotated["previous_api_key_expires_at"])
    assert 55 < (ends - datetime.now(UTC)).total_seconds() <= 60
    assert store.sources["shop"].previous_api_key.get_secret_value() == created["api_key"]
    # Without a body the service's overlap applies.
    assert (await client.post("/admin/sources/shop/rotate-key", headers=AUTH)).status == 200

    disabled = await client.post("/admin/sources/shop/disable", headers=AUTH)
    assert (await disabled.json())["enabled"] is False and not store.sources["shop"].enabled
    enabled = await client.post("/admin/sources/shop/enable", headers=AUTH)
    assert (await enabled.json())["enabled"] is True


async def test_a_write_kafka_does_not_take_is_a_503(client: Client, store: MemoryStore) -> None:
    store.down = True
    response = await client.post(
        "/admin/sources", json={"id": "shop", "exchange_rate": "1", "currency": "USD"}, headers=AUTH
    )
    assert response.status == 503 and "retry" in (await response.json())["error"]
    assert store.sources == {}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Bearer"}],
)
async def test_a_wrong_or_missing_token_is_a_401(client: Client, headers: dict[str, str]) -> None:
    await create(client)
    response = await client.get("/admin/sources", headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "shop" not in await response.text()


async def test_without_a_token_the_admin_api_is_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        app = create_app(Settings(), {})
    assert "admin API off: ADMIN_TOKEN is not set" in caplog.text
    assert not [r for r in app.router.resources() if r.canonical.startswith("/admin")]


async def test_the_document_is_served_without_the_token(client: Client) -> None:
    response = await client.get("/admin/openapi.json")
    assert response.status == 200
    assert (await response.json())["openapi"] == "3.1.0"
