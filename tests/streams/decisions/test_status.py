from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.source import normalise_status
from streams.decisions.status import (
    DEFAULT_STATUS_MAP,
    RecordState,
    StatusDecision,
    decide,
    event_for_status,
)
from zoho.fields import Module

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    "text", ["Pre-Qualified", "pre qualified", "PRE_QUALIFIED", " Pre - Qualified ", "prequalified"]
)
def test_normalise_status_spelling_variants(text: str) -> None:
    assert normalise_status(text) == normalise_status("Pre-Qualified") == "prequalified"


def test_default_map_is_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULT_STATUS_MAP[Module.LEADS]["Contacted"] = "Lead"  # type: ignore[index]


@pytest.mark.parametrize(
    ("module", "status", "overrides", "expected"),
    [
        (Module.LEADS, "Pre-Qualified", {}, "ConvertedLead"),
        (Module.LEADS, "pre qualified", {}, "ConvertedLead"),
        (Module.LEADS, "PRE_QUALIFIED", {}, "ConvertedLead"),
        (Module.LEADS, "Contacted", {}, None),
        (Module.LEADS, "Closed Won", {}, None),
        (Module.DEALS, "Closed Won", {}, "Purchase"),
        (Module.DEALS, "closed-won", {}, "Purchase"),
        (Module.DEALS, "Pre-Qualified", {}, None),
        # An override adds a status...
        (Module.LEADS, "Contacted", {Module.LEADS: {"contacted": "Contact"}}, "Contact"),
        # ...keeps the other defaults...
        (Module.LEADS, "Pre-Qualified", {Module.LEADS: {"Contacted": "Contact"}}, "ConvertedLead"),
        # ...replaces a default, whatever the spelling on either side...
        (Module.LEADS, "Pre-Qualified", {Module.LEADS: {"PRE QUALIFIED": "Lead"}}, "Lead"),
        # ...or switches it off.
        (Module.LEADS, "Pre-Qualified", {Module.LEADS: {"Pre-Qualified": ""}}, None),
        (Module.DEALS, "Closed Won", {Module.DEALS: {"Closed Won": " "}}, None),
        # Overrides apply to their own module only.
        (Module.DEALS, "Closed Won", {Module.LEADS: {"Closed Won": ""}}, "Purchase"),
        (Module.DEALS, "Contacted", {Module.LEADS: {"Contacted": "Contact"}}, None),
    ],
)
def test_event_for_status(
    module: Module, status: str, overrides: Mapping[Module, Mapping[str, str]], expected: str | None
) -> None:
    assert event_for_status(module, status, overrides) == expected


def run(
    statuses: list[tuple[str, int]], overrides: Mapping[Module, Mapping[str, str]] | None = None
) -> tuple[list[StatusDecision], RecordState]:
    state = RecordState.empty()
    decisions = []
    for status, minute in statuses:
        event = event_for_status(Module.LEADS, status, overrides or {})
        decision = decide(state, status, at(minute), event)
        decisions.append(decision)
        state = decision.new_state
    return decisions, state


def test_one_conversion_through_repeats_and_re_entries() -> None:
    sequence = [
        ("Not Contacted", 0),
        ("Contacted", 1),
        ("Pre-Qualified", 2),
        ("Pre-Qualified", 3),
        ("Contacted", 4),
        ("Pre-Qualified", 5),
    ]
    decisions, state = run(sequence)
    emitted = [(d.emit, d.previous_status) for d in decisions if d.emit]
    assert emitted == [("ConvertedLead", "Contacted")]
    assert [d.previous_status for d in decisions] == [
        None,
        "Not Contacted",
        "Contacted",
        "Pre-Qualified",
        "Pre-Qualified",
        "Contacted",
    ]
    assert state == RecordState("Pre-Qualified", at(5), ("ConvertedLead",))


def test_created_directly_in_a_mapped_status_converts() -> None:
    decisions, _ = run([("Pre-Qualified", 0)])
    assert (decisions[0].emit, decisions[0].previous_status) == ("ConvertedLead", None)


def test_spelling_variants_are_one_status() -> None:
    decisions, _ = run([("pre qualified", 0), ("PRE_QUALIFIED", 1), ("Pre-Qualified", 2)])
    assert [d.emit for d in decisions] == ["ConvertedLead", None, None]


def test_an_override_maps_another_status() -> None:
    decisions, _ = run(
        [("Contacted", 0), ("Pre-Qualified", 1)],
        overrides={Module.LEADS: {"Contacted": "Contact", "Pre-Qualified": ""}},
    )
    assert [d.emit for d in decisions] == ["Contact", None]


def test_replay_after_a_mapping_change_emits_the_new_event_but_keeps_the_status() -> None:
    _, state = run([("Contacted", 0), ("Pre-Qualified", 1), ("Contacted", 2)])
    # The source now maps Pre-Qualified to another event; minute 1 is replayed.
    remapped = {Module.LEADS: {"Pre-Qualified": "QualifiedLead"}}
    event = event_for_status(Module.LEADS, "Pre-Qualified", remapped)
    decision = decide(state, "Pre-Qualified", at(1), event)
    assert decision.emit == "QualifiedLead"
    assert decision.previous_status is None  # what preceded minute 1 is no longer known
    assert decision.new_state == RecordState(
        last_status="Contacted", last_seen_at=at(2), emitted=("ConvertedLead", "QualifiedLead")
    )
    # Replaying it once more changes nothing.
    again = decide(decision.new_state, "Pre-Qualified", at(1), event)
    assert again.emit is None
    assert again.new_state == decision.new_state


@pytest.mark.parametrize(
    ("state", "status", "seen_at", "event_name", "expected"),
    [
        # An older webhook does not rewind the current status.
        (
            RecordState("Contacted", at(5), ()),
            "Not Contacted",
            at(1),
            None,
            StatusDecision(None, None, RecordState("Contacted", at(5), ())),
        ),
        # The same instant is not older: the status moves.
        (
            RecordState("Contacted", at(5), ()),
            "Pre-Qualified",
            at(5),
            "ConvertedLead",
            StatusDecision(
                "ConvertedLead",
                "Contacted",
                RecordState("Pre-Qualified", at(5), ("ConvertedLead",)),
            ),
        ),
        # An older webhook still emits a newly mapped event, recorded as emitted.
        (
            RecordState("Contacted", at(5), ("ConvertedLead",)),
            "Pre-Qualified",
            at(1),
            "Qualified",
            StatusDecision(
                "Qualified",
                None,
                RecordState("Contacted", at(5), ("ConvertedLead", "Qualified")),
            ),
        ),
        # An event already emitted is not emitted again.
        (
            RecordState("Contacted", at(5), ("ConvertedLead",)),
            "Pre-Qualified",
            at(6),
            "ConvertedLead",
            StatusDecision(
                None, "Contacted", RecordState("Pre-Qualified", at(6), ("ConvertedLead",))
            ),
        ),
        # An unmapped status only moves the state.
        (
            RecordState.empty(),
            "Contacted",
            at(0),
            None,
            StatusDecision(None, None, RecordState("Contacted", at(0), ())),
        ),
    ],
)
def test_decide(
    state: RecordState,
    status: str,
    seen_at: datetime,
    event_name: str | None,
    expected: StatusDecision,
) -> None:
    assert decide(state, status, seen_at, event_name) == expected


@pytest.mark.parametrize(
    "state",
    [
        RecordState.empty(),
        RecordState("Pre-Qualified", at(5), ("ConvertedLead", "Contact")),
        RecordState(
            "Contacted", datetime(2024, 5, 1, 11, 0, tzinfo=timezone(timedelta(hours=2))), ()
        ),
        RecordState("Contacted", None, ()),
    ],
)
def test_state_json_round_trip(state: RecordState) -> None:
    import json

    stored = json.loads(json.dumps(state.to_json()))
    assert RecordState.from_json(stored) == state


def test_state_json_shape() -> None:
    assert RecordState("Contacted", at(5), ("ConvertedLead",)).to_json() == {
        "last_status": "Contacted",
        "last_seen_at": "2024-05-01T09:05:00+00:00",
        "emitted": ["ConvertedLead"],
    }


def test_no_stored_state_is_the_empty_state() -> None:
    assert RecordState.from_json(None) == RecordState.empty() == RecordState(None, None, ())


@pytest.mark.parametrize(
    "data",
    [
        {"last_status": 3, "last_seen_at": None, "emitted": []},
        {"last_status": None, "last_seen_at": 17, "emitted": []},
        {"last_status": None, "last_seen_at": None, "emitted": "ConvertedLead"},
        {"last_status": None, "last_seen_at": None, "emitted": [1]},
    ],
)
def test_from_json_refuses_what_it_did_not_store(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a stored record state"):
        RecordState.from_json(data)
