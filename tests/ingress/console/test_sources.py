"""The console's two ways to keep sources: this process's own, or written elsewhere and
followed (the sources topic)."""

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from ingress.console.sources import (
    NotVisibleYet,
    ProcessSources,
    SourceExists,
    WrittenSources,
)
from schemas.source import SourceConfig

FIELDS = {"id": "acme", "exchange_rate": "1.08", "currency": "EUR"}


async def test_a_process_source_gets_a_new_url_safe_key_and_is_served_at_once() -> None:
    served: dict[str, SourceConfig] = {}
    created = await ProcessSources(served).create(FIELDS)
    assert served["acme"].api_key.get_secret_value() == created.api_key
    assert len(created.api_key) >= 43 and "/" not in created.api_key
    assert created.api_key not in repr(created)
    with pytest.raises(SourceExists):
        await ProcessSources(served).create(FIELDS)


async def test_a_written_source_is_returned_once_the_follower_shows_it() -> None:
    followed: dict[str, SourceConfig] = {}
    written: list[SourceConfig] = []

    async def put(source: SourceConfig) -> None:
        written.append(source)
        # The registry reads it back from the topic a moment later.
        asyncio.get_running_loop().call_later(0.2, followed.__setitem__, source.id, source)

    created = await WrittenSources(lambda: followed, put).create(FIELDS)
    assert [s.id for s in written] == ["acme"] and "acme" in followed
    assert created.source.api_key.get_secret_value() == created.api_key


async def test_a_source_never_read_back_says_so() -> None:
    async def put(source: SourceConfig) -> None:
        pass

    with pytest.raises(NotVisibleYet):
        await WrittenSources(dict, put, visible_within_s=0.3).create(FIELDS)


async def test_bad_fields_raise_the_models_errors_and_write_nothing() -> None:
    written: list[Any] = []

    async def put(source: SourceConfig) -> None:
        written.append(source)

    with pytest.raises(ValidationError):
        await WrittenSources(dict, put).create(FIELDS | {"currency": "EURO"})
    assert written == []
