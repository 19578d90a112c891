"""The Zoho CRM API client of one source, and the registry the worker keeps them in.

Zoho issues only about 10 access tokens per refresh token per 10 minutes, so a client
refreshes lazily (on the first lookup, not at start-up), keeps its token until it is about
to expire or is rejected, lets one refresh run however many lookups wait for it, and backs
off when Zoho throttles it. Secrets stay in SecretStr and out of every message.
"""

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any

import aiohttp
from pydantic import SecretStr

from schemas.settings import Settings
from schemas.source import SourceConfig
from streams.decisions.retry import backoff_seconds
from zoho.accounts import refresh_form, token_url
from zoho.answers import (
    MAX_ANSWER_BYTES,
    STALE_TOKEN_CODES,
    access_token,
    exact_json_object,
    is_throttled,
    json_object,
)
from zoho.crm_api import (
    CrmAuthFailed,
    CrmRefused,
    CrmUnavailable,
    first_record,
    record_path,
    refresh_refused,
)
from zoho.fields import Module
from zoho.listing import (
    EMPTY_PAGE,
    THROTTLED_CODE,
    Page,
    list_path,
    list_query,
    page_of,
    zoho_time,
)
from zoho.timeline import (
    FAILURES_PATH,
    FailedRecords,
    TimelinePage,
    failed_records,
    failures_query,
    status_changes,
    timeline_path,
    timeline_query,
)

log = logging.getLogger(__name__)

# "About to expire": refreshed this long before Zoho's expires_in runs out.
EXPIRY_MARGIN_S = 60.0
DEFAULT_EXPIRES_IN_S = 3600.0
RETRY_BASE_S = 0.5
# Zoho's token limit is counted over 10 minutes: a throttled refresh waits longer.
THROTTLE_BASE_S = 10.0

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
# Told the source and kind of each CRM API call made ("record", "list", "failures",
# "timeline"), retries included: each one spends Zoho API credits.
CallCounter = Callable[[str, str], None]


@dataclass(frozen=True)
class AccessToken:
    value: SecretStr
    api_domain: str
    expires_at: float  # on the client's clock


@dataclass(frozen=True)
class _Answer:
    status: int | None  # None: no answer (timeout, connection error)
    body: bytes = b""
    retry_after: str | None = None
    failure: str = ""

    def json(self) -> dict[str, Any]:
        return json_object(self.body) or {}

    def document(self, what: str) -> dict[str, Any]:
        """The answer's JSON object, amounts exact; an answer that is none (cut at the
        size limit, or not JSON) is refused rather than read as empty."""
        document = exact_json_object(self.body)
        if document is None:
            raise CrmRefused(f"Zoho CRM answered the {what} request with no JSON object")
        return document

    def code(self) -> str | None:
        code = self.json().get("code") or self.json().get("error")
        return str(code) if code else None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.failure})"
        code = self.code()
        return f"HTTP {self.status}" + (f" {code}" if code else "")


class ZohoCrmClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        source: SourceConfig,
        *,
        timeout_s: float = 10.0,
        max_attempts: int = 5,
        max_backoff_s: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        count_call: CallCounter | None = None,
    ) -> None:
        self._session = session
        self._count_call = count_call
        self._source = source
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_attempts = max_attempts
        self._max_backoff_s = max_backoff_s
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._token: AccessToken | None = None
        self._refreshing: asyncio.Task[AccessToken] | None = None
        self._refresh_not_before = 0.0

    def __repr__(self) -> str:
        return f"ZohoCrmClient(source={self._source.id!r})"

    def uses_credentials_of(self, source: SourceConfig) -> bool:
        mine = self._source
        return (mine.client_id, mine.client_secret, mine.refresh_token, mine.accounts_url) == (
            source.client_id,
            source.client_secret,
            source.refresh_token,
            source.accounts_url,
        )

    async def get_record(self, module: Module, record_id: str) -> dict[str, Any] | None:
        """The record's fields, or None when Zoho says it does not exist (204, 404)."""
        answer = await self._crm_get("record", record_path(module, record_id))
        if answer.status in (204, 404):
            return None
        return first_record(answer.json(), module, record_id)

    async def list_page(
        self,
        module: Module,
        fields: Sequence[str],
        modified_since: datetime,
        page_token: str | None = None,
    ) -> Page:
        """One page of the module's records modified since then, oldest change first.

        304 and 204 are Zoho's "nothing modified since": an empty last page.
        """
        answer = await self._crm_get(
            "list",
            list_path(module),
            list_query(module, fields, page_token),
            {"If-Modified-Since": zoho_time(modified_since)},
        )
        if answer.status in (204, 304):
            return EMPTY_PAGE
        return page_of(answer.document("list"))

    async def webhook_failures(
        self, module: Module, since: date, until: date, page: int = 1
    ) -> FailedRecords:
        """The module's records whose webhooks Zoho failed to post between the dates."""
        answer = await self._crm_get(
            "failures", FAILURES_PATH, failures_query(module, since, until, page)
        )
        if answer.status in (204, 304, 404):
            return FailedRecords((), False)
        return failed_records(answer.document("failures"), module)

    async def timeline_page(
        self, module: Module, record_id: str, page_token: str | None = None
    ) -> TimelinePage:
        """The status changes on one page of the record's timeline."""
        answer = await self._crm_get(
            "timeline", timeline_path(module, record_id), timeline_query(page_token)
        )
        if answer.status in (204, 304, 404):
            return TimelinePage((), None)
        return status_changes(answer.document("timeline"), module)

    async def _crm_get(
        self,
        kind: str,
        url_path: str,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        """A CRM GET answered with 2xx, 304 or 404, after a fresh token for a stale one and
        backoff (honouring Retry-After) on throttling, 5xx and no answer.

        Raises CrmAuthFailed, CrmRefused (another 4xx, such as
        DISCRETE_PAGINATION_LIMIT_EXCEEDED) or CrmUnavailable after the bounded tries.
        """
        rejected: AccessToken | None = None
        retried_auth = False
        attempt = 0
        while True:
            token = await self._access_token(rejected)
            if self._count_call is not None:
                self._count_call(self._source.id, kind)
            answer = await self._call(
                "GET",
                token.api_domain + url_path,
                headers={
                    "Authorization": f"Zoho-oauthtoken {token.value.get_secret_value()}",
                    **(headers or {}),
                },
                params=query,
            )
            status = answer.status
            if status is not None and (200 <= status < 300 or status in (304, 404)):
                return answer
            if status == 401 and answer.code() in STALE_TOKEN_CODES:
                if retried_auth:
                    raise CrmAuthFailed(
                        f"Zoho CRM rejected a freshly refreshed access token ({answer.describe()})"
                    )
                retried_auth, rejected = True, token
                continue
            if status in (401, 403):
                raise CrmAuthFailed(f"Zoho CRM refused access ({answer.describe()})")
            throttled = status == 429 or answer.code() == THROTTLED_CODE
            if status is not None and status < 500 and not throttled:
                what = "lookup" if kind == "record" else f"{kind} request"
                raise CrmRefused(f"Zoho CRM refused the {what} ({answer.describe()})")
            attempt += 1
            if attempt >= self._max_attempts:
                raise CrmUnavailable(
                    f"Zoho CRM unavailable after {attempt} tries ({answer.describe()})"
                )
            what = "lookup" if kind == "record" else kind
            await self._sleep(self._delay(attempt - 1, RETRY_BASE_S, answer, f"zoho {what} failed"))

    async def close(self) -> None:
        task, self._refreshing = self._refreshing, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _access_token(self, rejected: AccessToken | None) -> AccessToken:
        token = self._token
        if token is not None and token is not rejected and not self._expiring(token):
            return token
        if self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh())
            self._refreshing.add_done_callback(self._refresh_done)
        # Shielded: a cancelled waiter must not cancel the refresh the others wait for.
        return await asyncio.shield(self._refreshing)

    def _refresh_done(self, task: "asyncio.Task[AccessToken]") -> None:
        if self._refreshing is task:
            self._refreshing = None
        if not task.cancelled():
            task.exception()  # retrieved here too, in case no waiter is left

    def _expiring(self, token: AccessToken) -> bool:
        return self._clock() >= token.expires_at - EXPIRY_MARGIN_S

    async def _refresh(self) -> AccessToken:
        source = self._source
        url = token_url(source.accounts_url)
        form = refresh_form(source.client_id, source.client_secret, source.refresh_token)
        last = "no answer"
        for attempt in range(self._max_attempts):
            # Set by a failed attempt, also of an earlier lookup: waiting here keeps
            # lookups that arrive during a backoff from spending Zoho's token allowance.
            wait = self._refresh_not_before - self._clock()
            if wait > 0:
                await self._sleep(wait)
            answer = await self._call("POST", url, data=form)
            document = answer.json()
            token = access_token(document)
            if token:
                self._token = self._token_from(token, document)
                log.info(
                    "zoho access token refreshed",
                    extra={"source_id": source.id, "api_domain": self._token.api_domain},
                )
                return self._token
            error = document.get("error")
            throttled = is_throttled(error)
            if error is not None and not throttled:
                raise CrmAuthFailed(refresh_refused(str(error), url))
            last = "throttled by Zoho" if throttled else answer.describe()
            base = THROTTLE_BASE_S if throttled else RETRY_BASE_S
            delay = self._delay(attempt, base, answer, "zoho token refresh failed")
            self._refresh_not_before = self._clock() + delay
        raise CrmUnavailable(
            f"no Zoho access token after {self._max_attempts} tries at {url} ({last})"
        )

    def _token_from(self, token: str, document: Mapping[str, Any]) -> AccessToken:
        api_domain = document.get("api_domain")
        if not isinstance(api_domain, str) or not api_domain.startswith(("https://", "http://")):
            raise CrmAuthFailed("Zoho's token answer has no usable api_domain")
        try:
            expires_in = float(document.get("expires_in", DEFAULT_EXPIRES_IN_S))
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN_S
        return AccessToken(
            SecretStr(token),
            api_domain.rstrip("/"),
            self._clock() + expires_in,
        )

    async def _call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> _Answer:
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=data,
                params=params,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                # read(n) returns what has arrived, up to n: a page of records comes
                # in many chunks.
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        break
                return _Answer(response.status, bytes(body), response.headers.get("Retry-After"))
        except TimeoutError:
            return _Answer(None, failure="timeout")
        except aiohttp.ClientError as error:
            # The type only: aiohttp's messages can quote request details.
            return _Answer(None, failure=type(error).__name__)

    def _delay(self, attempt: int, base: float, answer: _Answer, message: str) -> float:
        delay = backoff_seconds(
            attempt,
            base=base,
            cap=self._max_backoff_s,
            retry_after=answer.retry_after,
            now=datetime.now(UTC),
            random=self._jitter,
        )
        log.warning(
            message,
            extra={"source_id": self._source.id, "answer": answer.describe(), "retry_in_s": delay},
        )
        return delay


class ZohoClients:
    """The worker's clients, one per source, created on first use and closed together."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        count_call: CallCounter | None = None,
    ) -> None:
        self._session = session
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._count_call = count_call
        self._clients: dict[str, ZohoCrmClient] = {}
        self._retired: list[ZohoCrmClient] = []

    def for_source(self, source: SourceConfig) -> ZohoCrmClient:
        """The source's client; a new one when the source's Zoho credentials changed (a new
        refresh token from the set-up page, say), so no restart is needed to use them."""
        client = self._clients.get(source.id)
        if client is not None and not client.uses_credentials_of(source):
            # Not closed here: a lookup may still be waiting on its refresh.
            self._retired.append(client)
            client = None
        if client is None:
            client = self._clients[source.id] = ZohoCrmClient(
                self._session,
                source,
                timeout_s=self._settings.zoho_timeout_s,
                max_attempts=self._settings.zoho_max_attempts,
                max_backoff_s=self._settings.zoho_max_backoff_s,
                clock=self._clock,
                sleep=self._sleep,
                count_call=self._count_call,
            )
        return client

    async def get_record(
        self, source: SourceConfig, module: Module, record_id: str
    ) -> dict[str, Any] | None:
        """The lookup the webhook step is given: the source's client asks Zoho."""
        return await self.for_source(source).get_record(module, record_id)

    async def close(self) -> None:
        clients, self._clients = [*self._clients.values(), *self._retired], {}
        self._retired = []
        for client in clients:
            await client.close()

    async def __aenter__(self) -> "ZohoClients":
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
