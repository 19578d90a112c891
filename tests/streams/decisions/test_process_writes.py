"""The one step per webhook: whether it leaves the record's state to write."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.envelope import RawEnvelope
from schemas.source import SourceConfig
from streams.decisions.process import Rejected, Tracked, process
from streams.decisions.status import RecordState
from tests.builders import zoho_source
from zoho.fields import Module

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def raw(status: str, at: datetime = AT) -> bytes:
    return (
        RawEnvelope(
            envelope_id=f"env-{status}-{at.isoformat()}",
            source_id="shop",
            received_at=at,
            parameters={
                "lead_id": "4001",
                "cdp_id": "cdp-1",
                "lead_status": status,
                "annual_revenue": "100",
                "modified_by": "jane",
            },
        )
        .model_dump_json()
        .encode()
    )


async def no_lookup(_source: SourceConfig, _module: Module, _record: str) -> dict[str, Any]:
    raise AssertionError("the source neither verifies nor enriches")


async def run(table: dict[str, dict[str, Any]], value: bytes) -> Tracked:
    outcome = await process(
        value, {"shop": zoho_source()}, lambda key: RecordState.from_json(table.get(key)), no_lookup
    )
    assert not isinstance(outcome, Rejected)
    if outcome.changed:
        table[outcome.key] = outcome.new_state.to_json()
    return outcome


@pytest.mark.parametrize(
    ("first", "second", "changed"),
    [
        # A later webhook moves last_seen_at (and maybe the status): a write.
        (raw("Contacted"), raw("Contacted", AT + timedelta(minutes=1)), True),
        (raw("Contacted"), raw("Pre-Qualified", AT + timedelta(minutes=1)), True),
        # The same webhook delivered again: nothing to write.
        (raw("Contacted"), raw("Contacted"), False),
        # An older webhook replayed that maps to nothing new: nothing to write.
        (raw("Contacted"), raw("Not Contacted", AT - timedelta(days=1)), False),
        # An older webhook that converts still records the event it emitted.
        (raw("Contacted"), raw("Pre-Qualified", AT - timedelta(days=1)), True),
    ],
)
async def test_a_webhook_is_written_only_when_it_changes_the_state(
    first: bytes, second: bytes, changed: bool
) -> None:
    table: dict[str, dict[str, Any]] = {}
    assert (await run(table, first)).changed
    before = dict(table)
    outcome = await run(table, second)
    assert outcome.changed is changed
    assert (table == before) is not changed
