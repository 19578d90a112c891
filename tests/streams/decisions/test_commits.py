import pytest

from streams.decisions.commits import CommitRule

P = "zoho.webhooks.replay/0"


def rule_at(committed: int | None, earliest: int = 0, stuck_after_s: float = 10) -> CommitRule[str]:
    rule: CommitRule[str] = CommitRule(stuck_after_s)
    rule.assign(P)
    rule.start_at(P, committed, earliest)
    return rule


def confirm(rule: CommitRule[str], offsets: range) -> None:
    for offset in offsets:
        rule.confirm(P, offset)


@pytest.mark.parametrize(
    ("committed", "earliest", "confirmed", "expected"),
    [
        (100, 0, range(101, 105), {}),  # 100 itself never confirmed: a hole
        (100, 0, range(100, 105), {P: 105}),
        (None, 5, range(5, 7), {P: 7}),  # never committed: starts at the earliest
        (None, 5, range(6, 8), {}),
        (0, 0, range(1, 3), {}),  # 0 is a committed offset like any other
        (0, 0, range(0, 3), {P: 3}),
        (3, 10, range(10, 12), {P: 12}),  # retention removed what was committed
        (100, 0, range(90, 100), {}),  # re-reads below the base count for nothing
    ],
)
def test_commits_only_the_end_of_the_run_starting_at_the_base(
    committed: int | None, earliest: int, confirmed: range, expected: dict[str, int]
) -> None:
    rule = rule_at(committed, earliest)
    confirm(rule, confirmed)
    assert rule.committable() == expected


def test_the_run_stops_at_the_first_hole() -> None:
    rule = rule_at(100)
    confirm(rule, range(100, 103))
    confirm(rule, range(104, 110))
    assert rule.committable() == {P: 103}


def test_nothing_commits_before_the_base_is_known() -> None:
    rule: CommitRule[str] = CommitRule(10)
    rule.assign(P)
    confirm(rule, range(0, 5))
    assert rule.committable() == {}
    rule.start_at(P, 2, 0)
    assert rule.committable() == {P: 5}


def test_a_failed_commit_does_not_advance() -> None:
    rule = rule_at(100)
    confirm(rule, range(100, 105))
    assert rule.committable() == {P: 105}
    # Kafka refused: committed() is not called, the same offset is offered again.
    confirm(rule, range(105, 107))
    assert rule.committable() == {P: 107}
    assert rule.base(P) == 100


def test_an_accepted_commit_moves_the_base() -> None:
    rule = rule_at(100)
    confirm(rule, range(100, 105))
    rule.committed(P, 105)
    assert rule.base(P) == 105
    assert rule.committable() == {}
    confirm(rule, range(107, 109))
    assert rule.committable() == {}  # 105 and 106 are now the hole
    rule.committed(P, 103)  # a late answer for an older commit moves nothing back
    assert rule.base(P) == 105


def test_a_base_read_again_never_moves_back_past_an_accepted_commit() -> None:
    rule = rule_at(100)
    confirm(rule, range(100, 105))
    rule.committed(P, 105)
    assert rule.start_at(P, 100, 0) == 105


def test_revoked_partitions_forget_and_ignore_late_confirmations() -> None:
    rule = rule_at(100)
    confirm(rule, range(100, 105))
    rule.revoke(P)
    rule.confirm(P, 105)
    assert rule.committable() == {}
    assert rule.tracked() == []
    rule.assign(P)
    rule.start_at(P, 100, 0)
    assert rule.committable() == {}  # what was confirmed before is read again


def test_confirmations_stuck_above_a_hole_ask_to_read_again_from_the_base() -> None:
    rule = rule_at(100, stuck_after_s=10)
    confirm(rule, range(101, 105))
    assert rule.seeks_due(now=0) == {}  # the hole is first seen
    assert rule.seeks_due(now=9.9) == {}
    assert rule.seeks_due(now=10) == {P: 100}
    assert rule.seeks_due(now=15) == {}  # a read again gets its own time
    assert rule.seeks_due(now=20) == {P: 100}
    rule.confirm(P, 100)  # the read again reached the hole
    assert rule.seeks_due(now=40) == {}
    assert rule.committable() == {P: 105}


def test_no_seek_while_nothing_waits_above_the_base() -> None:
    rule = rule_at(100, stuck_after_s=10)
    assert rule.seeks_due(now=0) == {}
    assert rule.seeks_due(now=100) == {}
    confirm(rule, range(100, 103))  # in order: a run, not a hole
    assert rule.seeks_due(now=200) == {}
    assert rule.seeks_due(now=300) == {}


def test_a_hole_that_closes_resets_its_clock() -> None:
    rule = rule_at(100, stuck_after_s=10)
    rule.confirm(P, 102)
    assert rule.seeks_due(now=0) == {}
    confirm(rule, range(100, 102))
    rule.committed(P, 103)
    rule.confirm(P, 104)
    assert rule.seeks_due(now=9) == {}  # a new hole (103), first seen now
    assert rule.seeks_due(now=18) == {}
    assert rule.seeks_due(now=19) == {P: 103}


def test_a_partition_fetched_past_its_base_with_nothing_in_flight_is_read_again() -> None:
    # The last events were dropped before reaching the agent: nothing above to confirm.
    rule = rule_at(100, stuck_after_s=10)
    assert rule.seeks_due(now=0, positions={P: 105}, busy=False) == {}
    assert rule.seeks_due(now=10, positions={P: 105}, busy=False) == {P: 100}


@pytest.mark.parametrize(
    ("position", "busy"),
    [
        (105, True),  # the agent is still working, on this event or one before it
        (100, False),  # nothing fetched past the base yet
        (None, False),  # position unknown
    ],
)
def test_no_seek_while_the_base_may_still_be_on_its_way(position: int | None, busy: bool) -> None:
    rule = rule_at(100, stuck_after_s=10)
    positions = {} if position is None else {P: position}
    for now in (0, 10, 20, 30):
        assert rule.seeks_due(now=now, positions=positions, busy=busy) == {}


def test_a_busy_moment_restarts_the_clock_of_a_partition_fetched_past_its_base() -> None:
    rule = rule_at(100, stuck_after_s=10)
    assert rule.seeks_due(now=0, positions={P: 105}, busy=False) == {}
    assert rule.seeks_due(now=5, positions={P: 105}, busy=True) == {}
    assert rule.seeks_due(now=10, positions={P: 105}, busy=False) == {}
    assert rule.seeks_due(now=20, positions={P: 105}, busy=False) == {P: 100}
