import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.envelope import RawEnvelope
from schemas.source import SourceConfig
from streams.decisions.event import Lateness
from streams.decisions.process import Tracked, process
from streams.decisions.status import RecordState
from streams.decisions.sweep import (
    MAX_SEEN,
    Budget,
    advanced_mark,
    can_call_crm,
    envelope_time,
    recent,
    record_envelope,
    sweep_since,
    swept,
    timeline_envelopes,
)
from streams.decisions.validation import validate
from tests.zoho.fixture import answer
from zoho.fields import Module
from zoho.listing import page_of
from zoho.timeline import StatusChange, status_changes

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OVERLAP, LOOKBACK = timedelta(minutes=5), timedelta(days=1)


def source(**fields: object) -> SourceConfig:
    return SourceConfig.model_validate(
        {"id": "acme", "api_key": "k" * 32, "exchange_rate": "2", "currency": "USD"} | fields
    )


def lead() -> dict[str, object]:
    return dict(page_of(answer("leads_page.json")).records[0])


def test_the_window_starts_an_overlap_before_the_mark() -> None:
    mark = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    assert sweep_since(mark, NOW, OVERLAP, LOOKBACK) == mark - OVERLAP
    assert sweep_since(None, NOW, OVERLAP, LOOKBACK) == NOW - LOOKBACK


def test_the_mark_is_the_latest_modified_time_and_never_moves_back() -> None:
    records = page_of(answer("leads_page.json")).records
    latest = datetime(2024, 5, 1, 9, 42, 17, tzinfo=UTC)
    assert advanced_mark(None, records) == latest
    later = latest + timedelta(hours=1)
    assert advanced_mark(later, records) == later
    assert advanced_mark(None, [{"id": "1"}]) is None


def test_a_record_becomes_the_envelope_its_webhook_would_have_made() -> None:
    envelope = record_envelope(source(), Module.LEADS, lead(), "sweep", NOW)
    assert envelope is not None
    assert (envelope.origin, envelope.source_id, envelope.received_at) == ("sweep", "acme", NOW)
    change = validate(envelope, source())
    assert (change.record_id, change.cdp_id, change.status) == (
        "5725767000000438001",
        "cdp-7f3a9c",
        "Pre-Qualified",
    )
    assert change.amount == Decimal("1250000.50") and change.modified_by == "Priya Raman"
    assert change.event_time == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert change.event_time_source == "modified_time" and change.origin == "sweep"
    assert change.profile["title"] == "CTO"


def test_the_same_reading_gets_the_same_envelope_id() -> None:
    first = record_envelope(source(), Module.LEADS, lead(), "sweep", NOW)
    again = record_envelope(source(), Module.LEADS, lead(), "sweep", NOW + timedelta(minutes=15))
    edited = record_envelope(source(), Module.LEADS, lead() | {"City": "Palo Alto"}, "sweep", NOW)
    assert first and again and edited
    assert first.envelope_id == again.envelope_id != edited.envelope_id


def test_a_record_without_a_cdp_id_makes_no_envelope() -> None:
    [_, walk_in] = page_of(answer("leads_page.json")).records
    assert record_envelope(source(), Module.LEADS, walk_in, "sweep", NOW) is None


def test_a_passed_through_status_is_recovered_with_its_own_time() -> None:
    current = lead() | {"Lead_Status": "Contacted"}
    changes = status_changes(answer("timeline.json"), Module.LEADS).changes
    since = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    [envelope] = timeline_envelopes(source(), Module.LEADS, current, changes, since, "sweep", NOW)
    change = validate(envelope, source())
    assert change.status == "Pre-Qualified" and change.modified_by == "Sam Ortiz"
    assert change.event_time == datetime(2024, 5, 1, 8, 2, 51, tzinfo=UTC)
    assert change.event_time_source == "timeline"


def test_changes_before_the_window_or_into_unmapped_statuses_are_not_recovered() -> None:
    changes = [
        StatusChange("Pre-Qualified", datetime(2024, 4, 1, tzinfo=UTC), "a"),
        StatusChange("Contacted", datetime(2024, 5, 1, 10, tzinfo=UTC), "a"),
    ]
    since = datetime(2024, 5, 1, tzinfo=UTC)
    assert timeline_envelopes(source(), Module.LEADS, lead(), changes, since, "sweep", NOW) == []
    # A source's own mapping counts.
    mapped = source(status_map={"Leads": {"Contacted": "Lead"}})
    [envelope] = timeline_envelopes(mapped, Module.LEADS, lead(), changes, since, "sweep", NOW)
    assert envelope.parameters["lead_status"] == "Contacted"


def test_a_budget_is_spent_call_by_call() -> None:
    budget = Budget(2)
    assert budget.take() and budget.take() and not budget.take()
    assert budget.exhausted and budget.used == 2


async def no_lookup(*_: object) -> None:
    raise AssertionError("no lookup expected")


async def run(
    envelope: RawEnvelope, state: RecordState, lateness: Lateness | None = None
) -> Tracked:
    outcome = await process(
        envelope.model_dump_json().encode(),
        {"acme": source()},
        lambda _key: state,
        no_lookup,
        lateness,
    )
    assert isinstance(outcome, Tracked)
    return outcome


async def test_a_lost_webhook_converts_from_the_sweep_with_the_records_time() -> None:
    envelope = record_envelope(source(), Module.LEADS, lead(), "sweep", NOW)
    assert envelope is not None
    tracked = await run(envelope, RecordState.empty())
    assert tracked.conversion is not None and tracked.origin == "sweep"
    assert tracked.conversion.event_time == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert tracked.conversion.event_time_source == "modified_time"
    assert tracked.conversion.value == Decimal("2500001.00")


async def test_a_change_its_webhook_brought_converts_nothing_again() -> None:
    webhook = RawEnvelope(
        envelope_id="w-1",
        source_id="acme",
        received_at=datetime(2024, 5, 1, 9, 30, 2, tzinfo=UTC),
        parameters={
            "lead_id": "5725767000000438001",
            "cdp_id": "cdp-7f3a9c",
            "lead_status": "Pre-Qualified",
            "annual_revenue": "1250000.50",
            "modified_by": "Priya Raman",
        },
    )
    first = await run(webhook, RecordState.empty())
    assert first.conversion is not None
    envelope = record_envelope(source(), Module.LEADS, lead(), "sweep", NOW)
    assert envelope is not None
    again = await run(envelope, first.new_state)
    assert again.conversion is None
    # The sweep's older reading does not rewind the record's status.
    assert again.new_state.last_seen_at == first.new_state.last_seen_at


async def test_an_old_conversion_is_flagged_late() -> None:
    envelope = record_envelope(source(), Module.LEADS, lead(), "backfill", NOW)
    assert envelope is not None
    week = timedelta(days=7)
    fresh = await run(envelope, RecordState.empty(), Lateness(NOW, week))
    stale = await run(envelope, RecordState.empty(), Lateness(NOW + timedelta(days=8), week))
    assert fresh.conversion and not fresh.conversion.late
    assert stale.conversion and stale.conversion.late
    assert json.loads(stale.conversion.model_dump_json())["late"] is True


def test_the_envelopes_read_again_in_the_overlap_are_remembered() -> None:
    mark = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    seen = {
        "old": mark - timedelta(minutes=6),
        "edge": mark - OVERLAP,
        "new": mark - timedelta(minutes=1),
    }
    assert recent(seen, mark, OVERLAP) == {"edge": seen["edge"], "new": seen["new"]}
    assert recent(seen, None, OVERLAP) == {}
    many = {f"e{n}": mark - timedelta(seconds=n / 10) for n in range(MAX_SEEN + 5)}
    kept = recent(many, mark, OVERLAP)
    assert len(kept) == MAX_SEEN and "e0" in kept and f"e{MAX_SEEN + 4}" not in kept


def test_an_envelope_knows_its_records_modified_time() -> None:
    envelope = record_envelope(source(), Module.LEADS, lead(), "sweep", NOW)
    assert envelope is not None
    assert envelope_time(envelope) == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def test_only_sources_with_credentials_and_the_sweep_on_are_swept() -> None:
    credentials = {"client_id": "1000.C", "client_secret": "s", "refresh_token": "1000.r"}
    assert not can_call_crm(source()) and not swept(source(), True)
    assert can_call_crm(source(**credentials)) and swept(source(**credentials), True)
    assert not swept(source(**credentials), False)
    assert not swept(source(**credentials, sweep=False), True)
    assert not swept(source(**credentials, enabled=False), True)
    assert not can_call_crm(source(**credentials | {"refresh_token": ""}))
