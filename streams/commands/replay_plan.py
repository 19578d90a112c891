"""What a replay takes and what it reports. No Kafka here: the clock, the offsets and the
messages come in as arguments."""

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas.envelope import RawEnvelope

_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_OFFSET = re.compile(r"(?:(\d+):)?(\d+)")


class BadSelection(ValueError):
    """An option the operator gave cannot be used; the message says which and why."""


def parse_time(text: str, now: datetime) -> datetime:
    """An ISO 8601 time (UTC when it names no offset) or a duration back from `now`:
    `30m`, `2h`, `7d`, `1w`, `45s`."""
    cleaned = text.strip()
    relative = _RELATIVE.fullmatch(cleaned)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2)
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise BadSelection(
            f"{text!r} is neither an ISO 8601 time (2024-05-01T13:00:00Z) "
            "nor a duration back from now (30m, 2h, 7d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_offsets(values: Iterable[str], option: str) -> dict[int | None, int]:
    """`PARTITION:OFFSET` for one partition, or a bare `OFFSET` for every partition
    (the None key); a named partition wins over the bare value."""
    offsets: dict[int | None, int] = {}
    for value in values:
        match = _OFFSET.fullmatch(value.strip())
        if not match:
            raise BadSelection(f"{option} {value!r}: expected PARTITION:OFFSET or OFFSET")
        partition = int(match.group(1)) if match.group(1) is not None else None
        if partition in offsets:
            which = "every partition" if partition is None else f"partition {partition}"
            raise BadSelection(f"{option} is given twice for {which}")
        offsets[partition] = int(match.group(2))
    return offsets


@dataclass(frozen=True)
class Selection:
    """Which envelopes to replay: all of them, unless narrowed by source or time."""

    sources: frozenset[str] = frozenset()
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise BadSelection(
                f"--since {self.since.isoformat()} is not before --until {self.until.isoformat()}"
            )

    def matches(self, source_id: str | None, at: datetime | None) -> bool:
        """An unknown source or time matches only when that filter is not used."""
        if self.sources and source_id not in self.sources:
            return False
        if self.since and (at is None or at < self.since):
            return False
        return not (self.until and (at is None or at >= self.until))


def replayed(envelope: RawEnvelope, at: datetime) -> RawEnvelope:
    """The envelope as re-published: unchanged but for the mark. `received_at` stays the
    original, so the worker still orders it against the record's later webhooks."""
    return envelope.model_copy(update={"replayed_at": at})


def scan_range(
    partition: int,
    beginning: int,
    end: int,
    from_offsets: Mapping[int | None, int],
    to_offsets: Mapping[int | None, int],
    time_start: int | None = None,
    time_stop: int | None = None,
) -> range:
    """The offsets to read in one partition. `end` is the end offset when the replay
    started, so new writes are not chased; `--to-offset` is inclusive; `time_start` and
    `time_stop` are what the broker's time index gave for `--since` and `--until`.

    Offsets given for named partitions only (no bare OFFSET) leave the others unread.
    """
    named = (from_offsets.keys() | to_offsets.keys()) - {None}
    if named and None not in from_offsets and None not in to_offsets and partition not in named:
        return range(beginning, beginning)
    start = max(beginning, from_offsets.get(partition, from_offsets.get(None, 0)))
    stop = end
    last = to_offsets.get(partition, to_offsets.get(None))
    if last is not None:
        stop = min(stop, last + 1)
    if time_start is not None:
        start = max(start, time_start)
    if time_stop is not None:
        stop = min(stop, time_stop)
    return range(start, max(start, stop))


@dataclass
class Tally:
    """What a replay run saw; `replayed` counts sends Kafka confirmed (or, in a dry run,
    envelopes that would have been sent)."""

    scanned: int = 0
    replayed: int = 0
    not_selected: int = 0
    undecodable: int = 0
    duplicates: int = 0
    by_source: Counter[str] = field(default_factory=Counter)


def summary_text(
    tally: Tally,
    *,
    source_topic: str,
    target_topic: str,
    partitions: int,
    seconds: float,
    dry_run: bool,
) -> str:
    verb = "would replay" if dry_run else "replayed"
    per_source = ", ".join(
        f"{source}: {count}" for source, count in sorted(tally.by_source.items())
    )
    lines = [
        f"{'Dry run: nothing was sent. ' if dry_run else ''}"
        f"Replay of {source_topic} to {target_topic}",
        f"  scanned       {tally.scanned:>9}  messages in {partitions} partition(s)",
        f"  {verb:<13} {tally.replayed:>9}" + (f"  ({per_source})" if per_source else ""),
        f"  not selected  {tally.not_selected:>9}  outside the source or time filter",
    ]
    if tally.undecodable:
        lines.append(f"  undecodable   {tally.undecodable:>9}  selected, but no envelope to replay")
    if tally.duplicates:
        lines.append(f"  duplicates    {tally.duplicates:>9}  same envelope parked more than once")
    rate = tally.scanned / seconds if seconds > 0 else 0.0
    lines.append(f"  took {seconds:.1f} s ({rate:,.0f} messages/s)")
    return "\n".join(lines) + "\n"
