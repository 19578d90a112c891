"""Which source a request is for, and whether it may speak for it."""

import hmac
from collections.abc import Mapping

from schemas.source import SourceConfig


class UnknownSource(LookupError):
    pass


class BadApiKey(PermissionError):
    pass


def authenticate(
    sources: Mapping[str, SourceConfig], source_id: str, presented_key: str | None
) -> SourceConfig:
    source = sources.get(source_id)
    if source is None:
        raise UnknownSource(source_id)
    expected = source.api_key.get_secret_value().encode()
    # Constant-time, so response timing does not reveal how much of a guess was right.
    if presented_key is None or not hmac.compare_digest(expected, presented_key.encode()):
        raise BadApiKey(source_id)
    return source
