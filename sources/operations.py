"""What the admin API does to a source, as functions of the source and the request:
no I/O, so the admin API, the console and the set-up page share them."""

import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from schemas.admin import (
    SECRET_FIELDS,
    FieldProblem,
    KeyRotated,
    SourceCreated,
    SourceFields,
    SourcePatch,
    SourceView,
)
from schemas.source import SourceConfig


class SourceExists(ValueError):
    pass


class InvalidSource(ValueError):
    """The request does not make a valid source; `problems` name the fields."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


def problems_of(error: ValidationError) -> list[FieldProblem]:
    return [
        FieldProblem(
            field=".".join(str(part) for part in problem["loc"]) or "source",
            message=problem["msg"],
        )
        for problem in error.errors(include_input=False, include_url=False)
    ]


def _validated(model: type[BaseModel], body: bytes) -> BaseModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise InvalidSource(problems_of(error)) from None


def _source(fields: Mapping[str, Any]) -> SourceConfig:
    try:
        return SourceConfig.model_validate(dict(fields))
    except ValidationError as error:
        raise InvalidSource(problems_of(error)) from None


def create(body: bytes, existing: Mapping[str, SourceConfig], api_key: str) -> SourceConfig:
    request = _validated(SourceFields, body)
    source = _source(request.model_dump() | {"api_key": SecretStr(api_key)})
    if source.id in existing:
        raise SourceExists(source.id)
    return source


def update(source: SourceConfig, body: bytes) -> SourceConfig:
    patch = _validated(SourcePatch, body)
    return _source(source.model_dump() | patch.model_dump(include=patch.model_fields_set))


def changed(source: SourceConfig, **fields: Any) -> SourceConfig:
    """A copy with `fields` changed, validated again (model_copy alone would not)."""
    return _source(source.model_dump() | fields)


def rotate_key(
    source: SourceConfig, api_key: str, now: datetime, overlap: timedelta
) -> SourceConfig:
    if overlap <= timedelta(0):
        return changed(
            source,
            api_key=SecretStr(api_key),
            previous_api_key=SecretStr(""),
            previous_api_key_expires_at=None,
        )
    return changed(
        source,
        api_key=SecretStr(api_key),
        previous_api_key=source.api_key,
        previous_api_key_expires_at=now + overlap,
    )


def view(source: SourceConfig) -> BaseModel:
    secrets_set = {name: bool(getattr(source, name).get_secret_value()) for name in SECRET_FIELDS}
    return SourceView.model_validate(
        source.model_dump(exclude=set(SECRET_FIELDS)) | {"secrets_set": secrets_set}
    )


def created_view(source: SourceConfig) -> SourceCreated:
    created: SourceCreated = SourceCreated.model_validate(
        view(source).model_dump() | {"api_key": source.api_key.get_secret_value()}
    )
    return created


def rotated_view(source: SourceConfig) -> KeyRotated:
    return KeyRotated(
        source_id=source.id,
        api_key=source.api_key.get_secret_value(),
        previous_api_key_expires_at=source.previous_api_key_expires_at,
    )
