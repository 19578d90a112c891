"""The source URL in a browser: the set-up pages, and the code exchange against a local
server in Zoho's shapes."""

import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from ingress import handlers
from ingress.keys import METRICS, SETTINGS, SOURCE_STORE, SOURCES
from ingress.metrics import IngressMetrics
from ingress.setup_pages import failure_page, setup_page, success_page, wants_json
from ingress.zoho_setup import zoho_session_context
from schemas.logs import JsonFormatter
from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.store import StoreUnavailable
from tests.builders import ZOHO_SOURCE_KEY as KEY
from tests.builders import zoho_source as source
from tests.zoho_stand_in import ZohoStandIn, serving
from zoho.code_exchange import Exchanged, ExchangeFailed

Client = TestClient[web.Request, web.Application]
URL = "https://accounts.zoho.eu/oauth/v2/token"


# --- Zoho's answer, without I/O -------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("text/html, application/json", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_wants_json(accept: str, expected: bool) -> None:
    assert wants_json(accept) is expected


def test_the_success_page_shows_the_token_once_with_a_copy_button_and_the_limit() -> None:
    exchanged = Exchanged(SecretStr('1000.r<&">'), "https://www.zohoapis.eu")
    page = success_page(source(), exchanged, True, as_json=False)
    assert page.status == 200 and page.content_type == "text/html"
    assert 'value="1000.r&lt;&amp;&quot;&gt;"' in page.text
    assert "1000.r<" not in page.text
    assert "Copy</button>" in page.text
    assert "at most 20 refresh tokens" in page.text and "21st" in page.text
    assert "stored in the source" in page.text and "shown only this once" in page.text
    assert "1000.r" not in repr(page)


def test_the_success_json_has_the_token_and_the_next_step() -> None:
    exchanged = Exchanged(SecretStr("1000.r"), "https://www.zohoapis.eu")
    page = success_page(source(), exchanged, False, as_json=True)
    document = json.loads(page.text)
    assert document["refresh_token"] == "1000.r"
    assert document["stored"] is False
    assert "could NOT be stored" in document["next_step"]
    assert "20 refresh tokens" in document["warning"]


def test_the_error_page_escapes_zohos_words_and_names_the_url() -> None:
    failed = ExchangeFailed(502, "refused <b>", "http://x/oauth/v2/token?a=1&b=2", "<script>")
    page = failure_page(source(), failed, as_json=False)
    assert page.status == 502
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert "refused &lt;b&gt;" in page.text
    assert "http://x/oauth/v2/token?a=1&amp;b=2" in page.text


def test_the_set_up_page_says_what_the_url_is_for() -> None:
    page = setup_page(source(amount_field="Deal Value"), as_json=False)
    assert "webhook URL of source shop" in page.text
    assert "deal_value" in page.text and "&amp;zoho_code=" in page.text
    assert "https://accounts.zoho.eu/oauth/v2/token" in page.text
    assert json.loads(setup_page(source(), as_json=True).text)["source_id"] == "shop"


# --- The handler, against the stand-in --------------------------------------------------


@pytest.fixture
async def zoho() -> AsyncIterator[ZohoStandIn]:
    stand_in = ZohoStandIn()
    async with serving(stand_in):
        yield stand_in


class MemoryStore:
    """The store as the page sees it, writing into the sources it serves."""

    def __init__(self, sources: dict[str, SourceConfig], fail: bool = False) -> None:
        self.sources = sources
        self.fail = fail

    async def put(self, source: SourceConfig) -> None:
        if self.fail:
            raise StoreUnavailable("Kafka did not take the write (KafkaTimeoutError)")
        self.sources[source.id] = source

    async def delete(self, source_id: str) -> None:
        self.sources.pop(source_id, None)


def ingress_app(
    settings: Settings, sources: dict[str, SourceConfig], store: MemoryStore | None = None
) -> web.Application:
    """The ingress's real handler and Zoho session, without the Kafka producer a set-up
    page does not use."""
    app = web.Application()
    app[SETTINGS] = settings
    app[SOURCES] = sources
    app[SOURCE_STORE] = store or MemoryStore(sources)
    app[METRICS] = IngressMetrics()
    app.cleanup_ctx.append(zoho_session_context)
    app.router.add_get("/sources/{source_id}", handlers.source_endpoint)
    return app


def stand_in_source(zoho: ZohoStandIn, **fields: object) -> dict[str, SourceConfig]:
    defaults = {
        "client_id": zoho.client_id,
        "client_secret": zoho.client_secret,
        "accounts_url": zoho.base_url,
    }
    return {"shop": source(**(defaults | fields))}


@asynccontextmanager
async def serve(
    settings: Settings, sources: dict[str, SourceConfig], store: MemoryStore | None = None
) -> AsyncIterator[Client]:
    server = TestServer(ingress_app(settings, sources, store))
    # No access log, as in production (ingress.main): the URL carries the key and the code.
    await server.start_server(access_log=None)
    async with TestClient(server) as client:
        yield client


@pytest.fixture
async def open_source(zoho: ZohoStandIn) -> AsyncIterator[Client]:
    async with serve(Settings(zoho_timeout_s=2), stand_in_source(zoho)) as client:
        yield client


@pytest.fixture(autouse=True)
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as the JSON formatter writes it, `extra` fields included."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


async def test_a_good_code_gives_the_refresh_token_once(
    open_source: Client, zoho: ZohoStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    code = zoho.new_code()
    response = await open_source.get("/sources/shop", params={"api_key": KEY, "zoho_code": code})
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = await response.text()
    [refresh_token] = zoho.refresh_tokens
    assert f'value="{refresh_token}"' in page
    assert "at most 20 refresh tokens" in page

    again = await open_source.get("/sources/shop", params={"api_key": KEY, "zoho_code": code})
    assert again.status == 400
    assert "expired or was already used" in await again.text()

    assert zoho.secrets_in_query == []
    text = logged(caplog)
    assert "zoho refresh token issued" in text
    for secret in [*zoho.all_secrets(), code, KEY]:
        assert secret not in text


async def test_json_is_given_to_a_client_that_asks_for_it(
    open_source: Client, zoho: ZohoStandIn
) -> None:
    response = await open_source.get(
        "/sources/shop",
        params={"api_key": KEY, "zoho_code": zoho.new_code()},
        headers={"Accept": "application/json"},
    )
    assert response.status == 200
    document = await response.json()
    assert document["refresh_token"] in zoho.refresh_tokens
    assert document["api_domain"] == zoho.base_url


async def test_an_expired_code_says_to_generate_a_new_one(
    open_source: Client, zoho: ZohoStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    response = await open_source.get(
        "/sources/shop",
        params={"api_key": KEY, "zoho_code": "1000.expired"},
        headers={"Accept": "application/json"},
    )
    assert response.status == 400
    document = await response.json()
    assert document["zoho_error"] == "invalid_code"
    assert document["error"].startswith("The code has expired or was already used")
    assert document["token_url"] == f"{zoho.base_url}/oauth/v2/token"
    assert "1000.expired" not in logged(caplog)


async def test_a_wrong_client_secret_is_named(
    zoho: ZohoStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    sources = stand_in_source(zoho, client_secret="a-wrong-client-secret")
    async with serve(Settings(), sources) as client:
        response = await client.get(
            "/sources/shop", params={"api_key": KEY, "zoho_code": zoho.new_code()}
        )
        assert response.status == 502
        page = await response.text()
    assert "refused the client_secret" in page
    assert f"{zoho.base_url}/oauth/v2/token" in page
    assert "a-wrong-client-secret" not in page + logged(caplog)


async def test_an_unknown_client_points_at_the_data_centre(zoho: ZohoStandIn) -> None:
    sources = stand_in_source(zoho, client_id="1000.OTHERDC")
    async with serve(Settings(), sources) as client:
        response = await client.get(
            "/sources/shop", params={"api_key": KEY, "zoho_code": zoho.new_code()}
        )
        assert response.status == 502
        assert "another data centre" in await response.text()


async def test_zoho_unreachable_is_a_502_naming_the_url(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sources = {"shop": source(accounts_url=closed)}
    async with serve(Settings(), sources) as client:
        response = await client.get("/sources/shop", params={"api_key": KEY, "zoho_code": "1000.c"})
        assert response.status == 502
        assert f"{closed}/oauth/v2/token" in await response.text()
    assert "the-client-secret" not in logged(caplog)


async def test_a_slow_zoho_is_a_504(zoho: ZohoStandIn) -> None:
    zoho.token_delay_s = 2
    sources = stand_in_source(zoho)
    settings = Settings(zoho_timeout_s=0.2)
    async with serve(settings, sources) as client:
        response = await client.get(
            "/sources/shop", params={"api_key": KEY, "zoho_code": zoho.new_code()}
        )
        assert response.status == 504
        assert "did not answer in time" in await response.text()


async def test_a_wrong_api_key_is_a_401_before_zoho_is_asked(
    open_source: Client, zoho: ZohoStandIn
) -> None:
    response = await open_source.get(
        "/sources/shop", params={"api_key": "wrong", "zoho_code": "1000.c"}
    )
    assert response.status == 401
    assert zoho.token_requests == []


async def test_without_a_code_the_page_says_what_the_url_is_for(
    open_source: Client, zoho: ZohoStandIn
) -> None:
    response = await open_source.get("/sources/shop", params={"api_key": KEY})
    assert response.status == 200
    assert "webhook URL of source shop" in await response.text()
    assert zoho.token_requests == []


async def test_a_source_without_a_client_says_what_to_add(zoho: ZohoStandIn) -> None:
    sources = stand_in_source(zoho, client_id="", client_secret="")
    async with serve(Settings(), sources) as client:
        response = await client.get("/sources/shop", params={"api_key": KEY, "zoho_code": "1000.c"})
        assert response.status == 409
        assert "no client_id and client_secret" in await response.text()
    assert zoho.token_requests == []


async def test_the_token_is_stored_in_the_source_and_still_shown_once(
    zoho: ZohoStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    sources = stand_in_source(zoho)
    before = sources["shop"]
    async with serve(Settings(), sources) as client:
        response = await client.get(
            "/sources/shop", params={"api_key": KEY, "zoho_code": zoho.new_code()}
        )
        assert response.status == 200
        page = await response.text()
    [refresh_token] = zoho.refresh_tokens
    assert refresh_token in page and "stored in the source" in page
    after = sources["shop"]
    assert after.refresh_token.get_secret_value() == refresh_token
    # Everything else of the source stays as it was.
    assert after.model_copy(update={"refresh_token": before.refresh_token}) == before
    assert refresh_token not in logged(caplog)


async def test_a_failed_store_write_still_shows_the_token_and_says_so(
    zoho: ZohoStandIn,
) -> None:
    sources = stand_in_source(zoho)
    store = MemoryStore(sources, fail=True)
    async with serve(Settings(), sources, store) as client:
        response = await client.get(
            "/sources/shop",
            params={"api_key": KEY, "zoho_code": zoho.new_code()},
            headers={"Accept": "application/json"},
        )
        assert response.status == 200
        document = await response.json()
    [refresh_token] = zoho.refresh_tokens
    assert document["refresh_token"] == refresh_token
    assert document["stored"] is False and "could NOT be stored" in document["next_step"]
    assert sources["shop"].refresh_token.get_secret_value() != refresh_token
