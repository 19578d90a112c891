"""What the admin API does to a source, without I/O."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from schemas.source import SourceConfig
from sources import operations
from sources.operations import InvalidSource, SourceExists
from sources.seed import plan_import

KEY = "generated-api-key-0123456789"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def body(**fields: object) -> bytes:
    return json.dumps({"id": "shop", "exchange_rate": "1.5", "currency": "usd"} | fields).encode()


def fields_named(error: InvalidSource) -> set[str]:
    return {problem.field for problem in error.problems}


def test_create_uses_the_generated_key_and_the_source_model() -> None:
    source = operations.create(body(status_map={"Leads": {"Contacted": "Lead"}}), {}, KEY)
    assert source.api_key.get_secret_value() == KEY
    assert source.currency == "USD" and source.exchange_rate == Decimal("1.5")
    assert source.enabled is True


@pytest.mark.parametrize(
    ("request_body", "named"),
    [
        (body(api_key="mine-0123456789abcdef"), {"api_key"}),
        (body(exchange_rate="0"), {"exchange_rate"}),
        (body(currency="EURO"), {"currency"}),
        (body(pass_through=["password"]), {"pass_through"}),
        (body(verify=True), {"source"}),
        (b"{not json", {"source"}),
        (json.dumps({"exchange_rate": "1", "currency": "USD"}).encode(), {"id"}),
    ],
)
def test_a_bad_create_names_the_field(request_body: bytes, named: set[str]) -> None:
    with pytest.raises(InvalidSource) as caught:
        operations.create(request_body, {}, KEY)
    assert fields_named(caught.value) == named


def test_create_refuses_an_existing_id() -> None:
    existing = {"shop": operations.create(body(), {}, KEY)}
    with pytest.raises(SourceExists):
        operations.create(body(), existing, KEY)


def test_update_changes_only_the_fields_given() -> None:
    source = operations.create(body(default_country="de", client_secret="s3cret"), {}, KEY)
    updated = operations.update(source, b'{"exchange_rate": "2", "default_country": null}')
    assert updated.exchange_rate == Decimal("2") and updated.default_country is None
    assert updated.client_secret.get_secret_value() == "s3cret"
    assert updated.api_key == source.api_key and updated.currency == "USD"


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        (b'{"id": "other"}', {"id"}),
        (b'{"api_key": "x"}', {"api_key"}),
        (b'{"exchange_rate": null}', {"exchange_rate"}),
        (b'{"currency": "nope"}', {"currency"}),
    ],
)
def test_a_bad_update_names_the_field(patch: bytes, named: set[str]) -> None:
    source = operations.create(body(), {}, KEY)
    with pytest.raises(InvalidSource) as caught:
        operations.update(source, patch)
    assert fields_named(caught.value) == named


def test_a_rotation_keeps_the_previous_key_for_the_overlap() -> None:
    source = operations.create(body(), {}, KEY)
    rotated = operations.rotate_key(source, "new-api-key-0123456789", NOW, timedelta(hours=1))
    assert rotated.api_key.get_secret_value() == "new-api-key-0123456789"
    assert rotated.previous_api_key == source.api_key
    assert rotated.previous_api_key_expires_at == NOW + timedelta(hours=1)
    at_once = operations.rotate_key(source, "new-api-key-0123456789", NOW, timedelta(0))
    assert at_once.previous_api_key.get_secret_value() == ""
    assert at_once.previous_api_key_expires_at is None


def test_a_view_says_which_secrets_are_set_and_shows_none() -> None:
    source = operations.create(body(client_secret="s3cret-value"), {}, KEY)
    view = operations.view(source)
    text = view.model_dump_json()
    assert KEY not in text and "s3cret-value" not in text
    assert view.model_dump()["secrets_set"] == {
        "api_key": True,
        "client_secret": True,
        "refresh_token": False,
        "previous_api_key": False,
    }
    assert operations.created_view(source).api_key == KEY


def test_a_generated_key_is_32_random_url_safe_bytes() -> None:
    keys = {operations.new_api_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(key) == 43 and key.replace("-", "").replace("_", "").isalnum() for key in keys)


def seeded(source_id: str, rate: str) -> SourceConfig:
    return SourceConfig.model_validate(
        {
            "id": source_id,
            "api_key": f"{source_id}-key-0123456789",
            "exchange_rate": rate,
            "currency": "USD",
        }
    )


def test_an_import_keeps_what_the_topic_has_unless_forced() -> None:
    existing = {"a": seeded("a", "1")}
    seed = {"a": seeded("a", "2"), "b": seeded("b", "1")}
    plan = plan_import(seed, existing, force=False)
    assert [s.id for s in plan.write] == ["b"] and plan.kept == ("a",)
    forced = plan_import(seed, existing, force=True)
    assert [s.id for s in forced.write] == ["a", "b"] and forced.kept == ()
    # An unchanged source is not written again.
    assert plan_import({"a": existing["a"]}, existing, force=True).write == ()
