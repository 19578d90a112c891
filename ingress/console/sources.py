"""Where the console reads and creates sources.

The console needs two things: every source, and a way to create one. Behind this small
interface the store can be the process's own sources (as loaded from the sources file)
or the admin API's registry of the compacted sources topic.
"""

import secrets
from collections.abc import Mapping, MutableMapping
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
