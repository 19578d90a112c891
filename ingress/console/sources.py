"""Where the console reads and creates sources.

The console needs two things: every source, and a way to create one. Behind this small
interface the store can be the process's own sources (as loaded from the sources file)
or the admin API's registry of the compacted sources topic.
"""

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.source import SourceConfig


class SourceExists(ValueError):
    pass


@dataclass(frozen=True)
class Created:
    source: SourceConfig
    api_key: str

    def __repr__(self) -> str:
        return f"Created(source={self.source.id!r})"


class ConsoleSources(Protocol):
    def sources(self) -> Mapping[str, SourceConfig]: ...

    async def create(self, values: Mapping[str, Any]) -> Created:
        """Raises pydantic's ValidationError with the model's messages, or SourceExists."""
        ...


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


class ProcessSources:
    """The sources this ingress process serves; a source created here is served at once
    by this process only (workers and other replicas learn of it from the sources topic
    once that store is used)."""

    def __init__(self, sources: MutableMapping[str, SourceConfig]) -> None:
        self._sources = sources

    def sources(self) -> Mapping[str, SourceConfig]:
        return self._sources

    async def create(self, values: Mapping[str, Any]) -> Created:
        api_key = new_api_key()
        source = SourceConfig.model_validate(dict(values) | {"api_key": api_key})
        if source.id in self._sources:
            raise SourceExists(f"a source {source.id!r} exists already")
        self._sources[source.id] = source
        return Created(source, api_key)


class NotVisibleYet(RuntimeError):
    """The source was written but this process has not read it back in time."""


class WrittenSources:
    """Sources kept elsewhere and followed by this process — the sources topic read by a
    registry: a create writes through `put` and returns once `sources()` shows it, so the
    page that follows can show the source."""

    def __init__(
        self,
        sources: Callable[[], Mapping[str, SourceConfig]],
        put: Callable[[SourceConfig], Awaitable[None]],
        visible_within_s: float = 10.0,
    ) -> None:
        self._sources = sources
        self._put = put
        self._visible_within_s = visible_within_s

    def sources(self) -> Mapping[str, SourceConfig]:
        return self._sources()

    async def create(self, values: Mapping[str, Any]) -> Created:
        api_key = new_api_key()
        source = SourceConfig.model_validate(dict(values) | {"api_key": api_key})
        if source.id in self._sources():
            raise SourceExists(f"a source {source.id!r} exists already")
        await self._put(source)
        deadline = time.monotonic() + self._visible_within_s
        while source.id not in self._sources():
            if time.monotonic() > deadline:
                raise NotVisibleYet(
                    f"source {source.id!r} was stored but is not visible here yet; reload"
                )
            await asyncio.sleep(0.05)
        return Created(source, api_key)
