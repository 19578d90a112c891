"""Which source a request is for, and whether it may speak for it."""

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import SecretStr

from schemas.source import SourceConfig


class UnknownSource(LookupError):
    pass


class BadApiKey(PermissionError):
    pass


class DisabledSource(PermissionError):
    pass


def authenticate(
    sources: Mapping[str, SourceConfig],
    source_id: str,
    presented_key: str | None,
    now: datetime | None = None,
) -> SourceConfig:
    source = sources.get(source_id)
    if source is None:
        raise UnknownSource(source_id)
    now = now or datetime.now(UTC)
    previous_valid = (
        source.previous_api_key_expires_at is not None and now < source.previous_api_key_expires_at
    )
    # Both keys are compared, so timing does not tell which one a request used.
    current_ok = _same(source.api_key, presented_key)
    previous_ok = _same(source.previous_api_key, presented_key) and previous_valid
    if not (current_ok or previous_ok):
        raise BadApiKey(source_id)
    if not source.enabled:
        raise DisabledSource(source_id)
    return source


def _same(expected: SecretStr, presented: str | None) -> bool:
    secret = expected.get_secret_value()
    # Constant-time, so response timing does not reveal how much of a guess was right;
    # header bytes that are not UTF-8 arrive as surrogates and are compared as sent.
    return (
        bool(secret)
        and presented is not None
        and hmac.compare_digest(secret.encode(), presented.encode("utf-8", "surrogateescape"))
    )
