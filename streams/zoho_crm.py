"""The Zoho CRM API client of one source, and the registry the worker keeps them in.

Zoho issues only about 10 access tokens per refresh token per 10 minutes, so a client
refreshes lazily (on the first lookup, not at start-up), keeps its token until it is about
to expire or is rejected, lets one refresh run however many lookups wait for it, and backs
off when Zoho throttles it. Secrets stay in SecretStr and out of every message.
"""

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr

from schemas.records import RecordChange
from schemas.settings import Settings
from schemas.source import Module, SourceConfig
from streams.delivery import backoff_seconds
from streams.record_check import enriched, mismatches, needs_lookup
from streams.status import RecordState
from streams.validation import InvalidWebhook

log = logging.getLogger(__name__)

API_VERSION = "v8"
# "About to expire": refreshed this long before Zoho's expires_in runs out.
EXPIRY_MARGIN_S = 60.0
DEFAULT_EXPIRES_IN_S = 3600.0
# 401 codes that a fresh access token cures.
STALE_TOKEN_CODES = frozenset({"INVALID_TOKEN", "AUTHENTICATION_FAILURE"})
RETRY_BASE_S = 0.5
# Zoho's token limit is counted over 10 minutes: a throttled refresh waits longer.
THROTTLE_BASE_S = 10.0
MAX_ANSWER_BYTES = 1024 * 1024
REPLAY_HINT = "replay it with `zoho-cdp-replay --only-invalid`"

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ZohoError(Exception):
    """A Zoho call that did not give an answer. Messages never hold a secret."""


class CrmUnavailable(ZohoError):
    """Zoho did not answer usefully within the bounded retries: try again later."""


class CrmRefused(ZohoError):
    """Zoho refused the request for good: asking again gets the same answer."""


class CrmAuthFailed(CrmRefused):
    """Zoho refused the source's credentials: nothing works until they are fixed."""


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
        try:
            document = json.loads(self.body)
        except (UnicodeDecodeError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.failure})"
        code = self.json().get("code") or self.json().get("error")
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
    ) -> None:
        self._session = session
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

    async def get_record(self, module: Module, record_id: str) -> dict[str, Any] | None:
        """The record's fields, or None when Zoho says it does not exist (204, 404)."""
        url_path = f"/crm/{API_VERSION}/{module.value}/{quote(record_id, safe='')}"
        rejected: AccessToken | None = None
        retried_auth = False
        attempt = 0
        while True:
            token = await self._access_token(rejected)
            answer = await self._call(
                "GET",
                token.api_domain + url_path,
                headers={"Authorization": f"Zoho-oauthtoken {token.value.get_secret_value()}"},
            )
            if answer.status == 200:
                return _first_record(answer, module, record_id)
            if answer.status in (204, 404):
                return None
            if answer.status == 401 and answer.json().get("code") in STALE_TOKEN_CODES:
                if retried_auth:
                    raise CrmAuthFailed(
                        f"Zoho CRM rejected a freshly refreshed access token ({answer.describe()})"
                    )
                retried_auth, rejected = True, token
                continue
            if answer.status in (401, 403):
                raise CrmAuthFailed(f"Zoho CRM refused access ({answer.describe()})")
            if answer.status is not None and answer.status < 500 and answer.status != 429:
                raise CrmRefused(f"Zoho CRM refused the lookup ({answer.describe()})")
            attempt += 1
            if attempt >= self._max_attempts:
                raise CrmUnavailable(
                    f"Zoho CRM unavailable after {attempt} tries ({answer.describe()})"
                )
            await self._sleep(self._delay(attempt - 1, RETRY_BASE_S, answer, "zoho lookup failed"))

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
        url = f"{source.accounts_url}/oauth/v2/token"
        form = {
            "grant_type": "refresh_token",
            "client_id": source.client_id,
            "client_secret": source.client_secret.get_secret_value(),
            "refresh_token": source.refresh_token.get_secret_value(),
        }
        last = "no answer"
        for attempt in range(self._max_attempts):
            # Set by a failed attempt, also of an earlier lookup: waiting here keeps
            # lookups that arrive during a backoff from spending Zoho's token allowance.
            wait = self._refresh_not_before - self._clock()
            if wait > 0:
                await self._sleep(wait)
            answer = await self._call("POST", url, data=form)
            document = answer.json()
            if isinstance(document.get("access_token"), str) and document["access_token"]:
                self._token = self._token_from(document)
                log.info(
                    "zoho access token refreshed",
                    extra={"source_id": source.id, "api_domain": self._token.api_domain},
                )
                return self._token
            error = document.get("error")
            throttled = isinstance(error, str) and error.casefold() == "access denied"
            if error is not None and not throttled:
                raise CrmAuthFailed(_refresh_refusal(str(error), url))
            last = "throttled by Zoho" if throttled else answer.describe()
            base = THROTTLE_BASE_S if throttled else RETRY_BASE_S
            delay = self._delay(attempt, base, answer, "zoho token refresh failed")
            self._refresh_not_before = self._clock() + delay
        raise CrmUnavailable(
            f"no Zoho access token after {self._max_attempts} tries at {url} ({last})"
        )

    def _token_from(self, document: Mapping[str, Any]) -> AccessToken:
        api_domain = document.get("api_domain")
        if not isinstance(api_domain, str) or not api_domain.startswith(("https://", "http://")):
            raise CrmAuthFailed("Zoho's token answer has no usable api_domain")
        try:
            expires_in = float(document.get("expires_in", DEFAULT_EXPIRES_IN_S))
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN_S
        return AccessToken(
            SecretStr(str(document["access_token"])),
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
    ) -> _Answer:
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.content.read(MAX_ANSWER_BYTES)
                return _Answer(response.status, body, response.headers.get("Retry-After"))
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


def _first_record(answer: _Answer, module: Module, record_id: str) -> dict[str, Any]:
    data = answer.json().get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0]
    raise CrmRefused(f"Zoho CRM answered {module.value}/{record_id} without a record")


def _refresh_refusal(error: str, url: str) -> str:
    if error == "invalid_code":
        return (
            f"Zoho at {url} refused the refresh token (invalid_code): it was revoked, deleted "
            "as its user's oldest of 20, or is from another data centre; get a new one at the "
            "source URL with &zoho_code=<code>"
        )
    if error == "invalid_client":
        return f"Zoho at {url} does not know the client_id (invalid_client): check accounts_url"
    if error == "invalid_client_secret":
        return f"Zoho at {url} refused the client_secret (invalid_client_secret)"
    return f"Zoho at {url} refused the token refresh ({error})"


class ZohoClients:
    """The worker's clients, one per source, created on first use and closed together."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: Settings,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._session = session
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._clients: dict[str, ZohoCrmClient] = {}

    def for_source(self, source: SourceConfig) -> ZohoCrmClient:
        client = self._clients.get(source.id)
        if client is None:
            client = self._clients[source.id] = ZohoCrmClient(
                self._session,
                source,
                timeout_s=self._settings.zoho_timeout_s,
                max_attempts=self._settings.zoho_max_attempts,
                max_backoff_s=self._settings.zoho_max_backoff_s,
                clock=self._clock,
                sleep=self._sleep,
            )
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
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


async def check_record(
    clients: ZohoClients, change: RecordChange, source: SourceConfig, state: RecordState
) -> RecordChange:
    """The change, confirmed and enriched through the CRM as the source asks.

    Raises InvalidWebhook when the record does not confirm it, and also when Zoho cannot
    be asked: parked, the webhook can be replayed, where skipping the check would let a
    forged webhook through.
    """
    if not needs_lookup(change, source, state):
        return change
    try:
        record = await clients.for_source(source).get_record(change.module, change.record_id)
    except CrmUnavailable as error:
        raise InvalidWebhook([f"could not check the record: {error}; {REPLAY_HINT}"]) from None
    except CrmAuthFailed as error:
        raise InvalidWebhook(
            [
                f"could not check the record: {error}; fix the source's Zoho settings, then "
                f"{REPLAY_HINT}"
            ]
        ) from None
    except CrmRefused as error:
        raise InvalidWebhook([f"could not check the record: {error}"]) from None
    if source.verify:
        reasons = mismatches(change, record, source)
        if reasons:
            raise InvalidWebhook(reasons)
    return enriched(change, record, source) if source.enrich else change
