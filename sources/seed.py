"""Importing a sources file into the sources topic: a source already there is the
operator's newer word and wins, unless the import is forced."""

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.source import SourceConfig


@dataclass(frozen=True)
class ImportPlan:
    write: tuple[SourceConfig, ...]
    kept: tuple[str, ...]  # ids left as the topic has them


def plan_import(
    seed: Mapping[str, SourceConfig], existing: Mapping[str, SourceConfig], force: bool
) -> ImportPlan:
    write = tuple(
        source for source_id, source in seed.items() if force or source_id not in existing
    )
    # Writing an unchanged source again would only grow the topic.
    write = tuple(source for source in write if existing.get(source.id) != source)
    kept = tuple(source_id for source_id in seed if source_id in existing and not force)
    return ImportPlan(write, kept)
