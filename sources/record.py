"""A source as a message of the sources topic: keyed by its id, its secrets encrypted,
and a delete as a tombstone (no value), so compaction keeps the latest of each source."""

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from schemas.source import SourceConfig
from sources.crypto import SecretBox

SCHEMA_VERSION = 1


def secret_fields(model: type[BaseModel] = SourceConfig) -> tuple[str, ...]:
    """Every field that holds a secret, found from the model so a new one is covered too."""
    return tuple(
        name
        for name, field in model.model_fields.items()
        if field.annotation is SecretStr or field.annotation == SecretStr | None
    )


class StoredSource(BaseModel):
    """The topic's value: the source with each secret as a Fernet token."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = SCHEMA_VERSION
    written_at: datetime
    source: dict[str, Any]


def source_key(source_id: str) -> bytes:
    return source_id.encode()


def encode_source(source: SourceConfig, box: SecretBox, now: datetime | None = None) -> bytes:
    secrets = secret_fields()
    document = source.model_dump(mode="json", exclude=set(secrets))
    for name in secrets:
        value: SecretStr | None = getattr(source, name)
        plain = value.get_secret_value() if value is not None else ""
        document[name] = box.encrypt(plain) if plain else ""
    stored = StoredSource(written_at=now or datetime.now(UTC), source=document)
    return stored.model_dump_json().encode()


def decode_source(value: bytes, box: SecretBox) -> SourceConfig:
    """Raises UndecryptableSecret, or pydantic's ValidationError for a value that no
    longer validates."""
    stored = StoredSource.model_validate_json(value)
    document = dict(stored.source)
    for name in secret_fields():
        token = document.get(name)
        if isinstance(token, str) and token:
            document[name] = box.decrypt(token)
    return SourceConfig.model_validate(document)


def describe(value: bytes) -> str:
    """What a message is, for a log line: never its content."""
    try:
        return f"source {json.loads(value)['source']['id']!r}"
    except (ValueError, KeyError, TypeError):
        return "an unreadable message"
