"""The sources file: YAML with ${NAME} references to the environment, read into
validated sources, with errors that name the source and the field."""

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.source import SourceConfig

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class SourcesFileError(Exception):
    """The sources file cannot be used; the message names the source and field."""


def load_sources(path: Path, environ: dict[str, str]) -> dict[str, SourceConfig]:
    """Read the YAML sources file, resolving ${NAME} from `environ`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SourcesFileError(f"sources file {path}: cannot read it: {error}") from None
    entries = document.get("sources") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise SourcesFileError(f"sources file {path}: expected a list under 'sources'")
    return parse_sources(entries, environ, origin=str(path))


def parse_sources(
    entries: list[Any], environ: dict[str, str], origin: str = "sources"
) -> dict[str, SourceConfig]:
    sources: dict[str, SourceConfig] = {}
    for position, entry in enumerate(entries, start=1):
        label = entry.get("id", f"#{position}") if isinstance(entry, dict) else f"#{position}"
        where = f"sources file {origin}: source {label!r}"
        try:
            source = SourceConfig.model_validate(_resolve_env(entry, environ, where))
        except ValidationError as error:
            problems = "; ".join(
                f"field {'.'.join(str(part) for part in problem['loc'])!r}: {problem['msg']}"
                for problem in error.errors(include_input=False)
            )
            raise SourcesFileError(f"{where}: {problems}") from None
        if source.id in sources:
            raise SourcesFileError(f"{where}: the id is used twice")
        sources[source.id] = source
    return sources


def _resolve_env(value: Any, environ: dict[str, str], where: str, field: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _resolve_env(v, environ, where, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, environ, where, field) for v in value]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in environ:
                raise SourcesFileError(
                    f"{where}: field {field!r}: environment variable {name} is not set"
                )
            return environ[name]

        return _ENV_REFERENCE.sub(substitute, value)
    return value
