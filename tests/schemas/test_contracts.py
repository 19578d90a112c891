import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from pydantic import BaseModel

from schemas import contracts, topics
from schemas.conversion import DeliveryReceipt, RejectedConversion, UserData
from schemas.envelope import RawEnvelope
from schemas.records import InvalidRecord
from tests.builders import conversion_event

NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
ENVELOPE = RawEnvelope(
    envelope_id="e-1",
    source_id="shop",
    received_at=NOW,
    content_type="application/x-www-form-urlencoded",
    parameters={"lead_id": "1", "Lead Status": "Pre-Qualified"},
)
EVENT = conversion_event(
    event_time=NOW, user_data=UserData(em=["a" * 64]), profile={"city": "Berlin"}
)
SAMPLES: dict[str, list[BaseModel]] = {
    "raw_envelope": [
        ENVELOPE,
        ENVELOPE.model_copy(update={"replayed_at": NOW}),
        ENVELOPE.model_copy(update={"test": True}),
    ],
    "invalid_record": [
        InvalidRecord(
            reasons=["missing field 'cdp_id'"],
            envelope=ENVELOPE,
            topic="zoho.webhooks.raw",
            partition=0,
            offset=7,
            rejected_at=NOW,
        ),
        InvalidRecord(
            reasons=["not a raw envelope"],
            raw_value="{not json",
            topic="zoho.webhooks.raw",
            partition=1,
            offset=3,
            rejected_at=NOW,
        ),
    ],
    "conversion_event": [
        EVENT,
        EVENT.model_copy(update={"value": None, "original_value": None}),
        EVENT.model_copy(update={"test": True}),
    ],
    "delivery_receipt": [
        DeliveryReceipt(
            event_id=EVENT.event_id,
            source_id=EVENT.source_id,
            record_id=EVENT.record_id,
            cdp_id=EVENT.cdp_id,
            event_name=EVENT.event_name,
            cdp_status=202,
            delivered_at=NOW,
        )
    ],
    "rejected_conversion": [
        RejectedConversion(
            event=EVENT, reason="rejected by the CDP", cdp_status=400, rejected_at=NOW
        ),
        RejectedConversion(
            event=None,
            raw_value="?",
            reason="not a conversion event",
            cdp_status=None,
            rejected_at=NOW,
        ),
    ],
}


def checked_in(name: str) -> dict[str, Any]:
    path = contracts.JSON_DIR / contracts.schema_file_name(name)
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(contracts.ASYNCAPI_FILE.read_text(encoding="utf-8"))
    return document


def test_the_checked_in_contracts_are_what_the_models_generate() -> None:
    stale = contracts.stale(contracts.rendered())
    assert not stale, (
        f"{[str(path) for path in stale]} differ from the models: "
        "run `python -m schemas.contracts` and commit the result"
    )


def test_check_mode_fails_on_a_changed_file_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "json" / "x.schema.json"
    monkeypatch.setattr(contracts, "HERE", tmp_path)
    monkeypatch.setattr(contracts, "rendered", lambda: {target: "generated\n"})

    with pytest.raises(SystemExit, match=r"contracts out of date: \S*json/x.schema.json; run"):
        contracts.main(["--check"])
    assert not target.exists()

    contracts.main([])
    assert target.read_text() == "generated\n"
    contracts.main(["--check"])  # up to date now: returns quietly

    target.write_text("edited by hand\n")
    with pytest.raises(SystemExit):
        contracts.main(["--check"])


@pytest.mark.parametrize("name", sorted(contracts.PUBLISHED))
def test_the_schema_files_are_valid_draft_07(name: str) -> None:
    schema = checked_in(name)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)


@pytest.mark.parametrize(
    ("name", "message"), [(name, m) for name, ms in SAMPLES.items() for m in ms]
)
def test_what_the_models_write_matches_the_published_schema(name: str, message: BaseModel) -> None:
    document = json.loads(message.model_dump_json())
    assert document["schema_version"] == 1
    errors = [error.message for error in Draft7Validator(checked_in(name)).iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize("name", sorted(contracts.PUBLISHED))
def test_schema_version_is_required_and_pinned(name: str) -> None:
    validator = Draft7Validator(checked_in(name))
    document = json.loads(SAMPLES[name][0].model_dump_json())
    assert "schema_version" in checked_in(name)["required"]
    assert not validator.is_valid({k: v for k, v in document.items() if k != "schema_version"})
    assert not validator.is_valid(document | {"schema_version": 2})


def test_consumers_of_an_older_message_and_of_a_newer_optional_field_both_validate() -> None:
    validator = Draft7Validator(checked_in("conversion_event"))
    document = json.loads(EVENT.model_dump_json())
    # A field with a default is optional: messages written before it existed still pass.
    assert validator.is_valid({k: v for k, v in document.items() if k != "profile"})
    # Unknown fields are allowed, so a field added later does not break today's consumers.
    assert validator.is_valid(document | {"added_later": "x"})


def test_amounts_are_decimal_strings_in_the_published_event() -> None:
    validator = Draft7Validator(checked_in("conversion_event"))
    document = json.loads(EVENT.model_dump_json())
    assert document["value"] == "1500.15"
    assert not validator.is_valid(document | {"value": 1500.15})


def test_the_asyncapi_document_names_every_topic() -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    addresses = sorted(channel["address"] for channel in document["channels"].values())
    assert addresses == sorted(spec.name for spec in topics.TOPICS)


def test_every_channel_has_its_retention_messages_keys_and_schema_files() -> None:
    document = asyncapi()
    messages = document["components"]["messages"]
    retention = {spec.name: spec.retention_days * topics.DAY_MS for spec in topics.TOPICS}
    for channel_id, channel in document["channels"].items():
        kafka = channel["bindings"]["kafka"]
        assert kafka["topicConfiguration"]["retention.ms"] == retention[channel["address"]]
        for reference in channel["messages"].values():
            message = messages[reference["$ref"].removeprefix("#/components/messages/")]
            assert message["bindings"]["kafka"]["key"]["description"]
            schema_ref = message["payload"]["schema"]["$ref"]
            assert (contracts.ASYNCAPI_FILE.parent / schema_ref).is_file(), (channel_id, schema_ref)
    for operation in document["operations"].values():
        channel_id = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert channel_id in document["channels"]
        for reference in operation["messages"]:
            assert reference["$ref"].startswith(f"#/channels/{channel_id}/messages/")


@pytest.mark.parametrize(
    ("address", "key"),
    [
        (topics.RAW, "{source_id}:{record_id}"),
        (topics.REPLAY, "{source_id}:{record_id}"),
        (topics.INVALID, "{source_id}:{record_id}"),
        (topics.CONVERSIONS, "cdp_id"),
        (topics.CONVERSIONS_DEADLETTER, "cdp_id"),
        (topics.CONVERSIONS_DELIVERED, "cdp_id"),
    ],
)
def test_the_keys_are_documented(address: str, key: str) -> None:
    document = asyncapi()
    [channel] = [c for c in document["channels"].values() if c["address"] == address]
    [reference] = channel["messages"].values()
    message = document["components"]["messages"][reference["$ref"].split("/")[-1]]
    assert key in message["bindings"]["kafka"]["key"]["description"]
