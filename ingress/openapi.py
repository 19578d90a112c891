"""The admin API's OpenAPI 3.1 document, generated from the request and answer models."""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schemas.admin import (
    ErrorAnswer,
    ImportAnswer,
    KeyRotated,
    KeyRotation,
    SourceCreated,
    SourceFields,
    SourceList,
    SourcePatch,
    SourcesImport,
    SourceView,
)
from schemas.source import SourceConfig

REF = "#/components/schemas/{model}"


MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (SourceFields, "validation"),
    (SourcePatch, "validation"),
    (KeyRotation, "validation"),
    (SourcesImport, "validation"),
    (SourceView, "serialization"),
    (SourceCreated, "serialization"),
    (SourceList, "serialization"),
    (KeyRotated, "serialization"),
    (ImportAnswer, "serialization"),
    (ErrorAnswer, "serialization"),
]


# What a created source's id opens: lets a client (and schemathesis) chain the calls.
LINKS = {
    "links": {
        name: {"operationId": name, "parameters": {"source_id": "$response.body#/id"}}
        for name in (
            "showSource",
            "updateSource",
            "deleteSource",
            "disableSource",
            "enableSource",
            "rotateKey",
        )
    }
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "the request cannot be read",
        401: "missing or wrong admin token",
        404: "no such source",
        409: "a source with this id exists",
        413: "the request is too large",
        422: "the request does not make a valid source; `fields` names each field",
        503: "Kafka cannot take or return the write now; retry",
    }
    return {str(status): _json(ErrorAnswer, meaning[status]) for status in statuses}


def _operation(
    operation_id: str,
    summary: str,
    answers: dict[str, Any],
    body: dict[str, Any] | None = None,
    errors: tuple[int, ...] = (),
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": answers | _errors(401, *errors),
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


def openapi_document() -> dict[str, Any]:
    _, schemas = models_json_schema(MODELS, ref_template=REF)
    source_id = {
        "name": "source_id",
        "in": "path",
        "required": True,
        "schema": SourceConfig.model_json_schema()["properties"]["id"],
    }
    one_source = {"parameters": [source_id]}
    writes = (400, 413, 422, 503)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Zoho CRM → CDP sources admin API",
            "version": "1",
            "description": "Sources as data: changes apply to every ingress and worker "
            "within seconds. Secrets are accepted, never returned.",
        },
        "servers": [{"url": "/admin"}],
        "security": [{"bearer": []}],
        "paths": {
            "/sources": {
                "get": _operation(
                    "listSources", "List sources", {"200": _json(SourceList, "every source")}
                ),
                "post": _operation(
                    "createSource",
                    "Create a source; its api key is generated and shown once",
                    {"201": _json(SourceCreated, "the new source, with its api key") | LINKS},
                    _body(SourceFields),
                    (409, *writes),
                ),
            },
            "/sources/{source_id}": one_source
            | {
                "get": _operation(
                    "showSource",
                    "Show a source",
                    {"200": _json(SourceView, "the source")},
                    None,
                    (404,),
                ),
                "patch": _operation(
                    "updateSource",
                    "Change some fields of a source",
                    {"200": _json(SourceView, "the changed source")},
                    _body(SourcePatch),
                    (404, *writes),
                ),
                "delete": _operation(
                    "deleteSource",
                    "Delete a source",
                    {"204": {"description": "deleted"}},
                    None,
                    (404, 503),
                ),
            },
            "/sources/{source_id}/disable": one_source
            | {
                "post": _operation(
                    "disableSource",
                    "Disable a source: its URL answers 410, its webhooks convert nothing",
                    {"200": _json(SourceView, "the disabled source")},
                    None,
                    (404, 503),
                )
            },
            "/sources/{source_id}/enable": one_source
            | {
                "post": _operation(
                    "enableSource",
                    "Enable a source again",
                    {"200": _json(SourceView, "the enabled source")},
                    None,
                    (404, 503),
                )
            },
            "/sources/{source_id}/rotate-key": one_source
            | {
                "post": _operation(
                    "rotateKey",
                    "New api key; the previous one works until the overlap ends",
                    {"200": _json(KeyRotated, "the new key, shown once")},
                    _body(KeyRotation, required=False),
                    (404, *writes),
                )
            },
            "/import": {
                "post": _operation(
                    "importSources",
                    "Import sources with their api keys, as from a sources file",
                    {"200": _json(ImportAnswer, "which sources were written, which kept")},
                    _body(SourcesImport),
                    writes,
                )
            },
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
