"""The test webhook: a record of its own, in a converting status, marked test."""

from datetime import UTC, datetime

import pytest

from ingress.console.actions import ReplayJob, console_test_envelope, converting_status
from schemas.sources_file import parse_sources
from streams.decisions.process import validated_change

NOW = datetime(2024, 5, 1, tzinfo=UTC)


def source(**fields: object):  # type: ignore[no-untyped-def]
    entry = {"id": "shop", "api_key": "k" * 20, "exchange_rate": "1", "currency": "EUR"}
    return parse_sources([entry | fields], {})["shop"]


def test_the_test_webhook_validates_and_is_marked() -> None:
    shop = source(amount_field="Amount Total")
    envelope = console_test_envelope(shop, NOW)
    change, _ = validated_change(envelope, {"shop": shop})
    assert envelope.test and change.test
    assert change.record_id.startswith("console-test-")
    assert change.status == "Pre-Qualified"
    assert console_test_envelope(shop, NOW).parameters["lead_id"] != change.record_id


def test_a_source_whose_map_switches_the_default_off_uses_its_own_status() -> None:
    own = source(status_map={"Leads": {"Pre-Qualified": "", "Won": "Purchase"}})
    assert converting_status(own) == "Won"
    with pytest.raises(ValueError, match="no Leads status"):
        console_test_envelope(source(status_map={"Leads": {"Pre-Qualified": ""}}), NOW)


def test_a_replay_says_what_it_replays_in_the_singular_for_one() -> None:
    job = ReplayJob("shop", only_invalid=True, since=None, until=None, dry_run=True)
    assert (job.what_for(1), job.what_for(3)) == ("invalid record", "invalid records")
    window = ReplayJob("shop", only_invalid=False, since=NOW, until=None, dry_run=True)
    assert window.what_for(1) == "webhook from 2024-05-01T00:00:00+00:00 to now"
    assert window.what_for(0).startswith("webhooks from")
