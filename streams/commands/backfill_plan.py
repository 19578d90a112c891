"""What the backfill counts and how it says so; no I/O."""

from collections import Counter
from dataclasses import dataclass, field

from schemas.envelope import RawEnvelope
from schemas.source import SourceConfig
from streams.decisions.status import event_for_status
from zoho.fields import STATUS_FIELDS, module_of


@dataclass
class BackfillTally:
    records: int = 0
    without_cdp_id: int = 0
    envelopes: int = 0
    recovered: int = 0
    calls: int = 0
    # Envelopes whose status maps to an event, by event name.
    by_event: Counter[str] = field(default_factory=Counter)

    def count(self, envelope: RawEnvelope, source: SourceConfig) -> None:
        module = module_of(envelope.parameters)
        status = envelope.parameters.get(STATUS_FIELDS[module], "")
        event = event_for_status(module, status, source.status_map)
        if event is not None:
            self.by_event[event] += 1


def summary_text(tally: BackfillTally, *, source_id: str, topic: str, dry_run: bool) -> str:
    events = ", ".join(f"{name} {count}" for name, count in sorted(tally.by_event.items()))
    verb = "would publish" if dry_run else "published"
    lines = [
        f"source {source_id}: read {tally.records} records "
        f"({tally.without_cdp_id} without a CDP ID, skipped) in {tally.calls} Zoho API calls",
        f"{verb} {tally.envelopes + tally.recovered} envelopes to {topic} "
        f"({tally.recovered} statuses recovered from timelines)",
        f"in a mapped status, by event: {events or 'none'}"
        + (
            " (the worker converts each record and event once: those already converted "
            "are not sent again)"
            if tally.by_event
            else ""
        ),
    ]
    if dry_run:
        lines.append("dry run: nothing was sent")
    return "\n".join(lines) + "\n"
