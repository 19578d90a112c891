"""A local HTTP server in Zoho's shapes: the accounts token endpoint and CRM record reads.

One server plays both hosts: its token answers name its own address as `api_domain`.
Errors come as Zoho sends them — HTTP 200 {"error": "invalid_code"} from the token
endpoint, 401 {"code": "INVALID_TOKEN"} and 429 {"code": "TOO_MANY_REQUESTS"} from the CRM.
"""

import asyncio
import itertools
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

THROTTLED = {
    "error_description": "You have made too many requests continuously. "
    "Please try again after some time.",
    "error": "Access Denied",
    "status": "failure",
}


@dataclass
class ZohoStandIn:
    client_id: str = "1000.STANDINCLIENT"
    client_secret: str = field(default_factory=lambda: f"cs-{secrets.token_hex(12)}")
    # Codes that may still be exchanged; each works once.
    codes: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)
    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    expires_in: int = 3600
    # How many of the next refreshes Zoho throttles ("Access Denied").
    throttle_next: int = 0
    # Statuses the CRM answers before it answers normally again (429, 500, ...).
    crm_failures: list[int] = field(default_factory=list)
    token_delay_s: float = 0.0
    crm_delay_s: float = 0.0
    base_url: str = ""
    # The CRM host the token answers name; this server's own address when empty.
    api_domain: str = ""
    # False: the CRM refuses every access token, even a fresh one.
    accept_tokens: bool = True
    token_requests: list[dict[str, str]] = field(default_factory=list)
    crm_requests: list[str] = field(default_factory=list)
    # Names of secrets that arrived in a query string instead of the body.
    secrets_in_query: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    _serial: "itertools.count[int]" = field(default_factory=itertools.count)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth/v2/token", self.token)
        app.router.add_get("/crm/v8/{module}/{record_id}", self.record)
        return app

    def new_code(self) -> str:
        code = f"1000.code{secrets.token_hex(8)}"
        self.codes.add(code)
        return code

    def new_refresh_token(self) -> str:
        token = f"1000.refresh{secrets.token_hex(12)}"
        self.refresh_tokens.add(token)
        self.issued.append(token)
        return token

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def refreshes(self) -> int:
        return sum(1 for form in self.token_requests if form.get("grant_type") == "refresh_token")

    def all_secrets(self) -> list[str]:
        return [self.client_secret, *self.issued]

    async def token(self, request: web.Request) -> web.Response:
        form = {name: str(value) for name, value in (await request.post()).items()}
        self.secrets_in_query += [
            name for name in ("client_secret", "code", "refresh_token") if name in request.query
        ]
        self.token_requests.append({"grant_type": form.get("grant_type", "")})
        if self.token_delay_s:
            await asyncio.sleep(self.token_delay_s)
        if form.get("client_id") != self.client_id:
            return web.json_response({"error": "invalid_client"})
        if form.get("client_secret") != self.client_secret:
            return web.json_response({"error": "invalid_client_secret"})
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = form.get("code", "")
            if code not in self.codes:
                return web.json_response({"error": "invalid_code"})
            self.codes.discard(code)
            return web.json_response(
                self._token_answer() | {"refresh_token": self.new_refresh_token()}
            )
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return web.json_response({"error": "invalid_code"})
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return web.json_response(THROTTLED)
            return web.json_response(self._token_answer())
        return web.json_response({"error": "unsupported_grant_type"})

    def _token_answer(self) -> dict[str, Any]:
        access_token = f"1000.access{next(self._serial)}{secrets.token_hex(12)}"
        self.access_tokens.add(access_token)
        self.issued.append(access_token)
        return {
            "access_token": access_token,
            "api_domain": self.api_domain or self.base_url,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }

    async def record(self, request: web.Request) -> web.Response:
        module, record_id = request.match_info["module"], request.match_info["record_id"]
        self.crm_requests.append(f"{module}/{record_id}")
        if self.crm_delay_s:
            await asyncio.sleep(self.crm_delay_s)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        valid = token in self.access_tokens and self.accept_tokens
        if scheme != "Zoho-oauthtoken" or not valid:
            return web.json_response(
                {
                    "code": "INVALID_TOKEN",
                    "details": {},
                    "message": "invalid oauth token",
                    "status": "error",
                },
                status=401,
            )
        if self.crm_failures:
            status = self.crm_failures.pop(0)
            code = "TOO_MANY_REQUESTS" if status == 429 else "INTERNAL_ERROR"
            return web.json_response(
                {"code": code, "details": {}, "message": code.lower(), "status": "error"},
                status=status,
            )
        record = self.records.get((module, record_id))
        if record is None:
            return web.Response(status=204)
        return web.json_response({"data": [{"id": record_id} | record]})


@asynccontextmanager
async def serving(stand_in: ZohoStandIn) -> AsyncIterator[str]:
    """Serves on 127.0.0.1 on a free port, in the running loop; yields the base URL."""
    runner = web.AppRunner(stand_in.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    stand_in.base_url = f"http://127.0.0.1:{port}"
    try:
        yield stand_in.base_url
    finally:
        await runner.cleanup()


class StandInThread:
    """The stand-in on its own loop in a thread, for tests whose processes outlive one
    test's event loop."""

    def __init__(self, stand_in: ZohoStandIn) -> None:
        self.stand_in = stand_in
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(),), daemon=True
        )

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        async with serving(self.stand_in):
            self._started.set()
            await self._stopping.wait()

    def start(self) -> str:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("Zoho stand-in did not start")
        return self.stand_in.base_url

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)
