"""The published contracts, generated from the models: JSON Schemas and an AsyncAPI document.

`python -m schemas.contracts` rewrites them; `--check` only reports the files that differ
from what the models generate (CI and the contract test use it).
"""

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from schemas import topics
from schemas.conversion import ConversionEvent, DeliveryReceipt, RejectedConversion
from schemas.envelope import RawEnvelope
from schemas.records import InvalidRecord

HERE = Path(__file__).resolve().parent
JSON_DIR = HERE / "json"
ASYNCAPI_FILE = HERE / "asyncapi.yaml"

# Draft-07 is the JSON Schema dialect every AsyncAPI tool must support; what pydantic
# generates for these models uses nothing newer except the name of `$defs`.
JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
SCHEMA_FORMAT = "application/schema+json;version=draft-07"
KAFKA_BINDING_VERSION = "0.5.0"

PUBLISHED: Mapping[str, type[BaseModel]] = {
    "raw_envelope": RawEnvelope,
    "invalid_record": InvalidRecord,
    "conversion_event": ConversionEvent,
    "rejected_conversion": RejectedConversion,
    "delivery_receipt": DeliveryReceipt,
}

_RECORD_KEY = (
    "`{source_id}:{record_id}` as UTF-8 bytes: every webhook of one record lands in one "
    "partition, in order."
)
KEYS: Mapping[str, Mapping[str, Any]] = {
    "raw_envelope": {
        "type": "string",
        "description": f"{_RECORD_KEY} A replayed envelope keeps its original's key.",
    },
    "invalid_record": {
        "type": "string",
        "description": f"{_RECORD_KEY} The key of the message that failed.",
    },
    "conversion_event": {"type": "string", "description": "The `cdp_id`, as UTF-8 bytes."},
    "rejected_conversion": {
        "type": ["string", "null"],
        "description": "The event's `cdp_id`, as UTF-8 bytes; null when the message was "
        "not a conversion event.",
    },
    "delivery_receipt": {"type": "string", "description": "The `cdp_id`, as UTF-8 bytes."},
}


@dataclass(frozen=True)
class Channel:
    id: str
    message: str  # a key of PUBLISHED
    producers: tuple[tuple[str, str], ...]  # (operation id, who sends)
    consumers: tuple[tuple[str, str], ...]  # (operation id, who receives)


CHANNELS: Mapping[str, Channel] = {
    topics.RAW: Channel(
        "rawWebhooks",
        "raw_envelope",
        (
            ("acceptWebhook", "The ingress, once per accepted webhook request."),
            (
                "sweepCrm",
                "The worker's sweep and `zoho-cdp-backfill`, for records read from the "
                "Zoho CRM API (`origin` sweep or backfill).",
            ),
        ),
        (("convertRawWebhooks", "The worker's webhook agent."),),
    ),
    topics.REPLAY: Channel(
        "replayedWebhooks",
        "raw_envelope",
        (("replayWebhooks", "`zoho-cdp-replay`, with `replayed_at` set."),),
        (("convertReplayedWebhooks", "The worker's webhook agent, as for raw webhooks."),),
    ),
    topics.INVALID: Channel(
        "invalidWebhooks",
        "invalid_record",
        (("parkInvalidWebhook", "The worker, for a webhook that failed validation."),),
        (("replayInvalidWebhooks", "`zoho-cdp-replay --only-invalid`."),),
    ),
    topics.CONVERSIONS: Channel(
        "conversions",
        "conversion_event",
        (("publishConversion", "The worker, once per record and event name."),),
        (
            ("deliverConversions", "The worker's CDP sink."),
            ("consumeConversions", "Downstream teams (ads feedback, analytics)."),
        ),
    ),
    topics.CONVERSIONS_DEADLETTER: Channel(
        "conversionsDeadletter",
        "rejected_conversion",
        (("deadLetterConversion", "The worker's CDP sink, for a permanent rejection."),),
        (),
    ),
    topics.CONVERSIONS_DELIVERED: Channel(
        "conversionsDelivered",
        "delivery_receipt",
        (("receiptConversion", "The worker's CDP sink, once the CDP accepted the event."),),
        (("showDeliveries", "The operator console, to say what reached the CDP."),),
    ),
}


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The schema of the model's JSON, as `model_dump_json` writes it."""
    schema: dict[str, Any] = _draft_07(model.model_json_schema(mode="serialization"))
    _require_schema_version(schema)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$comment": f"Generated from {model.__module__}.{model.__name__} by "
        "`python -m schemas.contracts`; do not edit.",
    } | schema


def _draft_07(node: Any) -> Any:
    """Pydantic keeps sub-schemas under `$defs`; draft-07 calls them `definitions`."""
    if isinstance(node, dict):
        converted = {
            ("definitions" if key == "$defs" else key): _draft_07(value)
            for key, value in node.items()
        }
        ref = converted.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            converted["$ref"] = "#/definitions/" + ref.removeprefix("#/$defs/")
        return converted
    if isinstance(node, list):
        return [_draft_07(item) for item in node]
    return node


def _require_schema_version(node: Any) -> None:
    """Every published message carries `schema_version`; pydantic marks it optional
    because the model has a default."""
    if isinstance(node, dict):
        if "schema_version" in node.get("properties", {}):
            required = node.setdefault("required", [])
            if "schema_version" not in required:
                required.insert(0, "schema_version")
        for value in node.values():
            _require_schema_version(value)
    elif isinstance(node, list):
        for item in node:
            _require_schema_version(item)


def schema_file_name(name: str) -> str:
    return f"{name}.schema.json"


DESCRIPTION = (
    "Kafka topics of the pipeline that turns Zoho CRM lead and deal status changes into",
    "conversion events for the CDP. Values are UTF-8 JSON, keys UTF-8 strings. A deployment",
    "may prepend a prefix (TOPIC_PREFIX) to every topic name. Retention is the default that",
    "`zoho-cdp-topics` sets.",
    "",
    "Compatibility: every message carries `schema_version`. Within a version, fields are",
    "only ever added, and only as optional ones; consumers ignore fields they do not know.",
    "Anything else (removing, renaming or retyping a field, making an optional field",
    "required, changing a key or a topic's meaning) is a new `schema_version`.",
)


def asyncapi_document() -> dict[str, Any]:
    specs = {spec.name: spec for spec in topics.TOPICS}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic, channel in CHANNELS.items():
        spec = specs[topic]
        message_id = _message_id(channel.message)
        channels[channel.id] = {
            "address": topic,
            "title": topic,
            "description": f"{spec.purpose[0].upper()}{spec.purpose[1:]}.",
            "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
            "bindings": {
                "kafka": {
                    "topicConfiguration": {
                        "cleanup.policy": ["delete"],
                        "retention.ms": spec.retention_days * topics.DAY_MS,
                    },
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        for action, parties in (("send", channel.producers), ("receive", channel.consumers)):
            for operation_id, who in parties:
                operations[operation_id] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{channel.id}"},
                    "summary": who,
                    "messages": [{"$ref": f"#/channels/{channel.id}/messages/{message_id}"}],
                }
    messages = {
        _message_id(channel.message): _message(channel.message, specs[topic].purpose)
        for topic, channel in CHANNELS.items()
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Zoho CRM conversions pipeline",
            "version": "1.0.0",
            "description": "\n".join(DESCRIPTION) + "\n",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def _message_id(name: str) -> str:
    return PUBLISHED[name].__name__


def _message(name: str, purpose: str) -> dict[str, Any]:
    model = PUBLISHED[name]
    summary = " ".join((model.__doc__ or "").split()) or f"{purpose[0].upper()}{purpose[1:]}."
    return {
        "name": model.__name__,
        "title": model.__name__,
        "summary": summary,
        "contentType": "application/json",
        "payload": {
            "schemaFormat": SCHEMA_FORMAT,
            "schema": {"$ref": f"./json/{schema_file_name(name)}"},
        },
        "bindings": {"kafka": {"key": dict(KEYS[name]), "bindingVersion": KAFKA_BINDING_VERSION}},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the document reads like prose."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def rendered() -> dict[Path, str]:
    """Every contract file and the text the models say it should have."""
    files = {
        JSON_DIR / schema_file_name(name): json.dumps(json_schema(model), indent=2) + "\n"
        for name, model in PUBLISHED.items()
    }
    files[ASYNCAPI_FILE] = "# Generated by `python -m schemas.contracts`; do not edit.\n" + (
        yaml.dump(
            asyncapi_document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=88
        )
    )
    return files


def stale(files: Mapping[Path, str]) -> list[Path]:
    """The files whose checked-in text differs from `files` (or that are missing)."""
    return [
        path
        for path, text in files.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a file is out of date"
    )
    arguments = parser.parse_args(argv)
    files = rendered()
    outdated = stale(files)
    if arguments.check:
        if outdated:
            names = ", ".join(str(path.relative_to(HERE.parent)) for path in outdated)
            sys.exit(f"contracts out of date: {names}; run `python -m schemas.contracts`")
        return
    for path in outdated:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
        sys.stdout.write(f"wrote {path.relative_to(HERE.parent)}\n")


if __name__ == "__main__":
    main()
