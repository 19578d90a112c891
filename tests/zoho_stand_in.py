"""A local HTTP server in Zoho's shapes: the accounts token endpoint, CRM record reads,
record lists by Modified_Time (`page` numbers up to 2,000 records, `page_token` beyond,
`If-Modified-Since` with 304), the webhook-failures list and record timelines.

One server plays both hosts: its token answers name its own address as `api_domain`.
Errors come as Zoho sends them — HTTP 200 {"error": "invalid_code"} from the token
endpoint, 401 {"code": "INVALID_TOKEN"} and 429 {"code": "TOO_MANY_REQUESTS"} from the CRM.
"""

import asyncio
import itertools
import secrets
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

THROTTLED = {
    "error_description": "You have made too many requests continuously. "
    "Please try again after some time.",
    "error": "Access Denied",
    "status": "failure",
}
MAX_PER_PAGE = 200
# Zoho's page numbers reach only the first 2,000 records.
DISCRETE_PAGE_LIMIT = 2000
MAX_FIELDS = 50


def zoho_error(code: str, message: str, status: int, **details: Any) -> web.Response:
    return web.json_response(
        {"code": code, "details": details, "message": message, "status": "error"}, status=status
    )


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class ListCall:
    """One GET /crm/v8/{module}, as the stand-in received it."""

    module: str
    query: dict[str, str]
    if_modified_since: str | None
    access_token: str
    status: int = 0
    at: float = 0.0  # time.monotonic() when it arrived


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
    # Record timelines: (module, id) -> entries as Zoho answers them, oldest first.
    timelines: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    # The org's webhook failures, as Zoho lists them.
    webhook_failures: list[dict[str, Any]] = field(default_factory=list)
    # List calls (1-based) answered 429 TOO_MANY_REQUESTS with Retry-After once.
    throttle_list_calls: set[int] = field(default_factory=set)
    retry_after_s: int = 1
    list_calls: list[ListCall] = field(default_factory=list)
    timeline_requests: list[str] = field(default_factory=list)
    failure_requests: list[dict[str, str]] = field(default_factory=list)
    _page_tokens: dict[str, tuple[str, int]] = field(default_factory=dict)
    _serial: "itertools.count[int]" = field(default_factory=itertools.count)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth/v2/token", self.token)
        app.router.add_get("/crm/v8/settings/automation/webhook_failures", self.failures)
        app.router.add_get("/crm/v8/{module}", self.list_records)
        app.router.add_get("/crm/v8/{module}/{record_id}/__timeline", self.timeline)
        app.router.add_get("/crm/v8/{module}/{record_id}", self.record)
        return app

    def crm_calls(self) -> int:
        """Every CRM API call answered, of every kind."""
        return (
            len(self.crm_requests)
            + len(self.list_calls)
            + len(self.timeline_requests)
            + len(self.failure_requests)
        )

    def add_status_change(
        self, module: str, record_id: str, old: str | None, new: str, at: str, by: str
    ) -> None:
        """A timeline entry of the status field changing, in Zoho's shape."""
        field_name = "Lead_Status" if module == "Leads" else "Stage"
        self.timelines.setdefault((module, record_id), []).append(
            {
                "done_by": {"name": by, "id": "5725767000000411001"},
                "related_record": None,
                "automation_details": None,
                "record": {
                    "module": {"api_name": module, "id": "5725767000000002175"},
                    "name": record_id,
                    "id": record_id,
                },
                "audited_time": at,
                "action": "updated",
                "id": f"5725767000{next(self._serial):09d}",
                "source": "crm_ui",
                "extension": None,
                "type": None,
                "field_history": [
                    {
                        "api_name": field_name,
                        "field_label": field_name.replace("_", " "),
                        "id": "5725767000000002611",
                        "_value": {"new": new, "old": old},
                    }
                ],
            }
        )

    def add_webhook_failure(self, module: str, record_id: str, at: str) -> None:
        """A failed webhook post of the record, in Zoho's shape."""
        self.webhook_failures.append(
            {
                "webhook": {"name": "CDP conversions", "id": "5725767000000641001"},
                "entity_details": {
                    "name": record_id,
                    "id": record_id,
                    "module": {"api_name": module, "id": "5725767000000002175"},
                },
                "failure_reason": "Connection timed out",
                "response": {"status_code": None},
                "executed_time": at,
            }
        )

    def _authorised(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        valid = token in self.access_tokens and self.accept_tokens
        return token if scheme == "Zoho-oauthtoken" and valid else None

    @staticmethod
    def _invalid_token() -> web.Response:
        return zoho_error("INVALID_TOKEN", "invalid oauth token", 401)

    async def list_records(self, request: web.Request) -> web.Response:
        module, query = request.match_info["module"], dict(request.query)
        token = self._authorised(request)
        call = ListCall(
            module,
            query,
            request.headers.get("If-Modified-Since"),
            token or "",
            0,
            time.monotonic(),
        )
        self.list_calls.append(call)
        answer = self._list_answer(module, query, call, token)
        call.status = answer.status
        return answer

    def _list_answer(
        self, module: str, query: dict[str, str], call: ListCall, token: str | None
    ) -> web.Response:
        if token is None:
            return self._invalid_token()
        if len(self.list_calls) in self.throttle_list_calls:
            response = zoho_error("TOO_MANY_REQUESTS", "too many requests", 429)
            response.headers["Retry-After"] = str(self.retry_after_s)
            return response
        fields = [name for name in query.get("fields", "").split(",") if name]
        if not fields:
            return zoho_error(
                "REQUIRED_PARAM_MISSING",
                "One of the expected parameter is missing",
                400,
                param="fields",
            )
        if len(fields) > MAX_FIELDS:
            return zoho_error("LIMIT_EXCEEDED", "fields limit exceeded", 400, limit=MAX_FIELDS)
        per_page = int(query.get("per_page", MAX_PER_PAGE))
        if not 1 <= per_page <= MAX_PER_PAGE:
            return zoho_error("INVALID_DATA", "invalid data", 400, param="per_page")
        matching = self._matching(module, query, call.if_modified_since)
        if "page_token" in query:
            known = self._page_tokens.get(query["page_token"])
            if known is None or known[0] != module:
                return zoho_error("INVALID_DATA", "invalid page token", 400, param="page_token")
            start = known[1]
            page = 0
        else:
            page = int(query.get("page", 1))
            start = (page - 1) * per_page
            if start + per_page > DISCRETE_PAGE_LIMIT:
                return zoho_error(
                    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                    "cannot fetch more than 2000 records using page. Use page_token instead.",
                    400,
                    limit=DISCRETE_PAGE_LIMIT,
                )
        if not matching:
            return web.Response(status=304 if call.if_modified_since else 204)
        chunk = matching[start : start + per_page]
        more = start + per_page < len(matching)
        next_token = None
        if more:
            next_token = f"{secrets.token_hex(16)}"
            self._page_tokens[next_token] = (module, start + per_page)
        data = [
            {"id": record_id} | {name: record.get(name) for name in fields if name != "id"}
            for record_id, record in chunk
        ]
        return web.json_response(
            {
                "data": data,
                "info": {
                    "per_page": per_page,
                    "next_page_token": next_token,
                    "count": len(data),
                    "sort_by": query.get("sort_by", "id"),
                    "page": page or None,
                    "previous_page_token": None,
                    "page_token_expiry": "2099-01-01T00:00:00+00:00" if next_token else None,
                    "sort_order": query.get("sort_order", "desc"),
                    "more_records": more,
                },
            }
        )

    def _matching(
        self, module: str, query: dict[str, str], if_modified_since: str | None
    ) -> list[tuple[str, dict[str, Any]]]:
        converted = query.get("converted", "false")
        since = _time(if_modified_since) if if_modified_since else None
        found = []
        for (record_module, record_id), record in list(self.records.items()):
            if record_module != module:
                continue
            if module == "Leads" and converted != "both":
                if bool(record.get("$converted")) != (converted == "true"):
                    continue
            modified = record.get("Modified_Time")
            if since is not None and (modified is None or _time(modified) <= since):
                continue
            found.append((record_id, record))
        if query.get("sort_by") == "Modified_Time":
            found.sort(
                key=lambda item: _time(item[1].get("Modified_Time") or "1970-01-01T00:00:00+00:00"),
                reverse=query.get("sort_order", "desc") == "desc",
            )
        return found

    async def timeline(self, request: web.Request) -> web.Response:
        module, record_id = request.match_info["module"], request.match_info["record_id"]
        self.timeline_requests.append(f"{module}/{record_id}")
        if self._authorised(request) is None:
            return self._invalid_token()
        query = dict(request.query)
        if "page_token" in query and "per_page" in query:
            return zoho_error("INVALID_DATA", "per_page cannot be given with page_token", 400)
        entries = self.timelines.get((module, record_id), [])
        if not entries:
            return web.Response(status=204)
        per_page = int(query.get("per_page", MAX_PER_PAGE))
        start = 0
        if "page_token" in query:
            known = self._page_tokens.get(query["page_token"])
            if known is None:
                return zoho_error("INVALID_DATA", "invalid page token", 400, param="page_token")
            start = known[1]
        # Newest first, as Zoho lists a timeline.
        ordered = list(reversed(entries))
        chunk = ordered[start : start + per_page]
        more = start + per_page < len(ordered)
        next_token = None
        if more:
            next_token = secrets.token_hex(16)
            self._page_tokens[next_token] = (f"{module}/{record_id}", start + per_page)
        return web.json_response(
            {
                "__timeline": chunk,
                "info": {
                    "next_page_token": next_token,
                    "per_page": per_page,
                    "count": len(chunk),
                    "previous_page_token": None,
                    "more_records": more,
                },
            }
        )

    async def failures(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.failure_requests.append(query)
        if self._authorised(request) is None:
            return self._invalid_token()
        since = date.fromisoformat(query["from"]) if "from" in query else None
        until = date.fromisoformat(query["to"]) if "to" in query else None
        if since and until and (until - since).days > 90:
            return zoho_error("INVALID_DATA", "the span may be 90 days at most", 400)
        found = [
            failure
            for failure in self.webhook_failures
            if failure["entity_details"]["module"]["api_name"] == query.get("module", "")
            or "module" not in query
        ]
        found = [
            failure
            for failure in found
            if (since is None or _time(failure["executed_time"]).date() >= since)
            and (until is None or _time(failure["executed_time"]).date() <= until)
        ]
        if not found:
            return web.Response(status=204)
        page, per_page = int(query.get("page", 1)), int(query.get("per_page", MAX_PER_PAGE))
        chunk = found[(page - 1) * per_page : page * per_page]
        return web.json_response(
            {
                "webhook_failures": chunk,
                "info": {
                    "per_page": per_page,
                    "count": len(chunk),
                    "page": page,
                    "more_records": page * per_page < len(found),
                },
            }
        )

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
        if self._authorised(request) is None:
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
