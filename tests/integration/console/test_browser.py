"""The console in headless Chromium (Debian's package, driven by Playwright; no browser
download): what an operator does, and what a wrong token, a missing CSRF token and a
forged cookie get. Set SCREENSHOTS_DIR=docs to refresh the README's screenshots."""

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from harness.pipeline import Pipeline
from tests.integration.console.conftest import ADMIN_TOKEN, SHOP_KEY

pytestmark = pytest.mark.integration

CHROMIUM = next(
    (
        path
        for path in (os.environ.get("CHROMIUM_PATH"), shutil.which("chromium"))
        if path and os.access(path, os.X_OK)
    ),
    "",
)
HOW_TO_ENABLE = (
    "browser tests need Debian's chromium: apt-get install chromium "
    "(scripts/test installs it when CI=true and run as root)"
)
try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - the test extra installs it
    async_playwright = None  # type: ignore[assignment]

if not CHROMIUM or async_playwright is None:
    if os.environ.get("CI") == "true":
        # In CI these tests must run: scripts/bootstrap installs the browser.
        pytest.fail(HOW_TO_ENABLE, pytrace=False)
    pytest.skip(HOW_TO_ENABLE, allow_module_level=True)

SLOW_MS = 120_000


def lead(cdp_id: str, **fields: str) -> dict[str, str]:
    return {
        "lead_id": fields.pop("lead_id", uuid.uuid4().hex[:12]),
        "cdp_id": cdp_id,
        "lead_status": fields.pop("lead_status", "Pre-Qualified"),
        "annual_revenue": "2500",
        "modified_by": "jane@example.com",
        "email": "jane@example.com",
        "phone": "+1 415 555 0100",
        "first_name": "Jane",
    } | fields


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, console_pipeline: Pipeline) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=console_pipeline.base_url, viewport={"width": 1280, "height": 900}
    )
    await context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=console_pipeline.base_url
    )
    opened = await context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    await context.close()


async def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


async def sign_in(page: Page, token: str = ADMIN_TOKEN) -> None:
    await page.goto("/console/sources")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")


async def test_an_operator_sets_up_and_checks_a_source(
    page: Page, console_pipeline: Pipeline
) -> None:
    await page.goto("/console/sources")
    await expect(page.locator("h1")).to_have_text("Sign in")
    await screenshot(page, "console-sign-in")
    await sign_in(page)
    await expect(page.locator("h1")).to_have_text("Sources")

    # Create a source; a bad field first shows the model's message beside it.
    source_id = f"acme-{uuid.uuid4().hex[:6]}"
    form = page.locator("#create-source")
    await form.locator("input[name=id]").fill(source_id)
    await form.locator("input[name=exchange_rate]").fill("1.08")
    await form.locator("input[name=currency]").fill("EURO")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#error-currency")).to_contain_text("ISO 4217")
    await form.locator("input[name=currency]").fill("EUR")
    await form.locator("select[name=accounts_url]").select_option("https://accounts.zoho.eu")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("h1")).to_have_text(f"Source {source_id}")

    # Copy its URL with the button: the clipboard holds the URL with the api key.
    await page.click("button[data-copy='#source-url']")
    await expect(page.locator(".copied")).to_have_text("Copied.")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == await page.locator("#source-url").input_value()
    assert f"/sources/{source_id}?api_key=" in copied
    await expect(page.locator("#parameters-leads tr.required")).to_have_count(5)
    await expect(page.locator("#parameters-deals tr.required")).to_have_count(5)

    # Post a webhook to a configured source and watch it arrive without reloading.
    cdp_id = f"cdp-{uuid.uuid4().hex[:10]}"
    fields = lead(cdp_id)
    await page.goto("/console/sources/shop")
    status, _ = await console_pipeline.post("shop", SHOP_KEY, fields)
    assert status == 202
    row = page.locator("#conversions tr", has_text=fields["lead_id"])
    await expect(row).to_contain_text("delivered", timeout=SLOW_MS)
    await expect(page.locator("#webhooks tr", has_text=fields["lead_id"])).to_contain_text(
        "converted"
    )
    await page.fill("#zoho-code", "1000.0123456789abcdef")
    await expect(page.locator("#countdown")).to_contain_text("expires in about")
    # The exchange opens the source URL with the code; Zoho itself is not called here.
    await page.evaluate("window.open = (url) => { window.openedUrl = url; }")
    await page.click("#open-exchange")
    opened = await page.evaluate("window.openedUrl")
    assert opened.startswith(console_pipeline.source_url("shop") + "?api_key=")
    assert opened.endswith("&zoho_code=1000.0123456789abcdef")
    await screenshot(page, "console-source")

    # Its trace, from the CDP ID.
    await page.goto("/console/trace")
    await page.fill("input[name=q]", cdp_id)
    await page.click("form.search button")
    kinds = page.locator("ol.timeline .kind")
    await expect(kinds).to_have_text(["received", "status", "converted", "delivered"])
    await screenshot(page, "console-trace")

    await page.goto("/console/sources")
    await expect(page.locator("table.health")).to_contain_text("shop")
    await screenshot(page, "console-sources")


async def test_a_test_webhook_and_a_replay_from_the_actions_page(
    page: Page, console_pipeline: Pipeline
) -> None:
    await sign_in(page)
    await page.goto("/console/sources/shop/actions")
    await page.click("button:has-text('Send a test webhook')")
    await expect(page.locator("#test-sent")).to_be_visible()
    await page.click("#test-sent a")
    await expect(page.locator("ol.timeline")).to_contain_text("test webhook received")

    async def delivered() -> bool:
        await page.reload()
        return "delivered to the CDP" in await page.content()

    await _eventually(delivered)
    test_events = [e for e in list(console_pipeline.cdp.cdp.delivered) if e.get("test")]
    assert test_events, "no event marked test at the CDP"

    invalid = lead("", lead_id=f"bad-{uuid.uuid4().hex[:8]}")
    assert (await console_pipeline.post("shop", SHOP_KEY, invalid))[0] == 202
    await page.goto("/console/sources/shop")
    await expect(page.locator("#invalid")).to_contain_text(invalid["lead_id"], timeout=SLOW_MS)
    await page.goto("/console/sources/shop/actions")
    await page.check("input[value=invalid]")
    await page.click("#count")
    await expect(page.locator("#replay-count")).not_to_have_text("0")
    await page.click("#confirm-replay")
    await expect(page.locator("#replay-done")).to_be_visible(timeout=SLOW_MS)
    await screenshot(page, "console-actions")
    await page.goto(f"/console/trace?q={invalid['lead_id']}")
    await expect(page.locator("ol.timeline")).to_contain_text("replayed webhook received")


async def test_a_wrong_token_gets_nothing(page: Page) -> None:
    await sign_in(page, "console-admin-token-wrong-guess")
    await expect(page.locator(".error")).to_have_text("That is not the admin token.")
    await page.goto("/console/sources/shop")
    await expect(page.locator("h1")).to_have_text("Sign in")
    assert "shop" not in await page.content()


async def test_a_form_without_its_csrf_token_gets_nothing(page: Page) -> None:
    await sign_in(page)
    await page.goto("/console/sources/shop/actions")
    await page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())"
    )
    await page.click("button:has-text('Send a test webhook')")
    await expect(page.locator("body")).to_contain_text("out of date")
    assert "envelope" not in await page.content()


async def test_a_forged_cookie_gets_nothing(page: Page, console_pipeline: Pipeline) -> None:
    await page.context.add_cookies(
        [{"name": "zoho_cdp_console", "value": "gAAAAABforged", "url": console_pipeline.base_url}]
    )
    await page.goto("/console/sources/shop")
    await expect(page.locator("h1")).to_have_text("Sign in")
    assert "shop" not in await page.content()


async def _eventually(probe: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(1)
