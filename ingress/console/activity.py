"""What the console knows about each source and record, built from the pipeline's topics.

Pure: the feed decodes each message and hands it in with the message's own times; the
pages ask with a `now`. Everything is bounded — a number of recent items per source and
a number of records kept for tracing, the oldest record forgotten first.
"""

from collections import Counter, OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from schemas.conversion import ConversionEvent, DeliveryReceipt, RejectedConversion
from schemas.envelope import RawEnvelope
from schemas.records import InvalidRecord
from schemas.sweep import SweepMark
from zoho.fields import (
    CDP_ID_FIELD,
    RECORD_ID_FIELDS,
    STATUS_FIELDS,
    module_of,
    normalise_field_name,
)

IDENTIFIERS = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country")
DAY = timedelta(hours=24)
_MINUTE = 60
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WebhookSeen:
    at: datetime
    envelope_id: str
    source_id: str
    record_id: str
    cdp_id: str
    status: str
    replayed: bool
    test: bool
    origin: str = "webhook"


@dataclass(frozen=True, slots=True)
class InvalidSeen:
    at: datetime
    envelope_id: str | None
    source_id: str
    record_id: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConversionSeen:
    at: datetime
    event_id: str
    source_id: str
    record_id: str
    cdp_id: str
    event_name: str
    status: str
    previous_status: str | None
    value: Decimal | None
    currency: str
    test: bool
    identifiers: frozenset[str]


@dataclass(frozen=True, slots=True)
class DeliverySeen:
    at: datetime
    event_id: str
    cdp_status: int


@dataclass(frozen=True, slots=True)
class DeadLetterSeen:
    at: datetime
    event_id: str | None
    source_id: str
    record_id: str
    reason: str
    cdp_status: int | None
    cdp_response: str


@dataclass(frozen=True, slots=True)
class StatusSeen:
    at: datetime
    source_id: str
    record_id: str
    status: str | None
    emitted: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a record's trace."""

    at: datetime
    kind: str  # received, validated, parked, status, converted, delivered, dead-lettered
    text: str
    ids: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RecordTrace:
    source_id: str
    record_id: str
    cdp_ids: tuple[str, ...]
    steps: tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class WebhookRow:
    seen: WebhookSeen
    outcome: str  # "parked", "validated", "converted" or "waiting for the worker"
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConversionRow:
    seen: ConversionSeen
    delivery: str  # "delivered", "dead-lettered" or "not yet"


@dataclass(frozen=True, slots=True)
class Health:
    source_id: str
    last_webhook: datetime | None
    last_conversion: datetime | None
    webhooks_24h: int
    conversions_24h: int
    invalid_24h: int
    dead_letters_24h: int
    last_sweep: datetime | None = None  # when a sweep last moved the source's mark
    swept_to: datetime | None = None  # the latest Modified_Time it has read


class _Window:
    """Counts per minute over the last 24 hours."""

    def __init__(self) -> None:
        self._minutes: Counter[int] = Counter()

    def add(self, at: datetime) -> None:
        self._minutes[int(at.timestamp()) // _MINUTE] += 1
        if len(self._minutes) > 2 * 24 * 60:
            newest = max(self._minutes)
            for minute in [m for m in self._minutes if m < newest - 24 * 60]:
                del self._minutes[minute]

    def count(self, now: datetime) -> int:
        since = int((now - DAY).timestamp()) // _MINUTE
        return sum(n for minute, n in self._minutes.items() if minute > since)


@dataclass
class _SourceActivity:
    per_source: int
    webhooks: deque[WebhookSeen] = field(init=False)
    invalid: deque[InvalidSeen] = field(init=False)
    conversions: deque[ConversionSeen] = field(init=False)
    dead_letters: deque[DeadLetterSeen] = field(init=False)
    windows: dict[str, _Window] = field(init=False)
    last_webhook: datetime | None = None
    last_conversion: datetime | None = None
    sweep_marks: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.webhooks = deque(maxlen=self.per_source)
        self.invalid = deque(maxlen=self.per_source)
        self.conversions = deque(maxlen=self.per_source)
        self.dead_letters = deque(maxlen=self.per_source)
        self.windows = {kind: _Window() for kind in ("webhooks", "conversions", "invalid", "dl")}


RecordKey = tuple[str, str]


@dataclass(slots=True)
class _Record:
    # Lists, not sets or deques: a record has a few of each, and there are many records.
    steps: list[Step] = field(default_factory=list)
    cdp_ids: list[str] = field(default_factory=list)
    envelope_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)


def _unlink(index: dict[str, list[RecordKey]], name: str, key: RecordKey) -> None:
    keys = index.get(name)
    if keys is not None and key in keys:
        keys.remove(key)
        if not keys:
            del index[name]


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


class ActivityIndex:
    def __init__(
        self, per_source: int = 200, max_records: int = 200_000, steps_per_record: int = 100
    ) -> None:
        self.per_source = per_source
        self.max_records = max_records
        self.steps_per_record = steps_per_record
        self.clear()

    def clear(self) -> None:
        """Forgets everything, for a feed that reads the topics again from the start."""
        self._sources: dict[str, _SourceActivity] = {}
        self._records: OrderedDict[RecordKey, _Record] = OrderedDict()
        self._by_cdp_id: dict[str, list[RecordKey]] = {}
        self._by_envelope: dict[str, RecordKey] = {}
        self._by_event: dict[str, RecordKey] = {}
        self._parked: dict[str, tuple[str, ...]] = {}  # envelope id -> reasons
        self._by_record_id: dict[str, list[RecordKey]] = {}
        # The worker handles a record's webhooks in order: a state it wrote for a webhook
        # received at t means every earlier webhook of the record was handled too.
        self._processed_until: dict[RecordKey, datetime] = {}
        self._delivered: dict[str, DeliverySeen] = {}
        self._dead: dict[str, DeadLetterSeen] = {}
        self._converted_at: set[tuple[RecordKey, datetime]] = set()
        self.messages = 0

    # -- what the feed hands in

    def add_webhook(self, envelope: RawEnvelope) -> None:
        parameters = {normalise_field_name(k): v for k, v in envelope.parameters.items()}
        module = module_of(parameters)
        seen = WebhookSeen(
            at=envelope.received_at,
            envelope_id=envelope.envelope_id,
            source_id=envelope.source_id,
            record_id=parameters.get(RECORD_ID_FIELDS[module], ""),
            cdp_id=parameters.get(CDP_ID_FIELD, ""),
            status=parameters.get(STATUS_FIELDS[module], ""),
            replayed=envelope.replayed_at is not None,
            test=envelope.test,
            origin=envelope.origin,
        )
        activity = self._source(seen.source_id)
        activity.webhooks.append(seen)
        activity.windows["webhooks"].add(seen.at)
        activity.last_webhook = _latest(activity.last_webhook, seen.at)
        record = self._record((seen.source_id, seen.record_id))
        _add(record.envelope_ids, seen.envelope_id)
        if seen.cdp_id:
            _add(record.cdp_ids, seen.cdp_id)
        self._by_envelope[seen.envelope_id] = (seen.source_id, seen.record_id)
        self._link_cdp_id(seen.cdp_id, (seen.source_id, seen.record_id))
        how = (
            "replayed webhook"
            if seen.replayed
            else "test webhook"
            if seen.test
            else "webhook"
            if seen.origin == "webhook"
            else f"{seen.origin} envelope"
        )
        self._step(
            record,
            Step(
                seen.at,
                "received",
                f"{how} received, status {seen.status or '(none)'}",
                (("envelope", seen.envelope_id),),
            ),
        )
        self.messages += 1

    def add_invalid(self, parked: InvalidRecord, key: bytes | None) -> None:
        envelope = parked.envelope
        if envelope is not None:
            parameters = {normalise_field_name(k): v for k, v in envelope.parameters.items()}
            record_id = parameters.get(RECORD_ID_FIELDS[module_of(parameters)], "")
            source_id = envelope.source_id
        else:
            source_id, _, record_id = (key or b"").decode("utf-8", "replace").partition(":")
        seen = InvalidSeen(
            parked.rejected_at,
            envelope.envelope_id if envelope else None,
            source_id,
            record_id,
            tuple(parked.reasons),
        )
        activity = self._source(source_id)
        activity.invalid.append(seen)
        activity.windows["invalid"].add(seen.at)
        if seen.envelope_id:
            self._parked[seen.envelope_id] = seen.reasons
        record = self._record((source_id, record_id))
        ids = (("envelope", seen.envelope_id),) if seen.envelope_id else ()
        self._step(record, Step(seen.at, "parked", "parked: " + "; ".join(seen.reasons), ids))
        self.messages += 1

    def add_status(self, source_id: str, record_id: str, state: dict[str, object]) -> None:
        """A write of the worker's record-state table (its changelog)."""
        at_text = state.get("last_seen_at")
        if not isinstance(at_text, str):
            return
        at = datetime.fromisoformat(at_text)
        status = state.get("last_status")
        emitted = state.get("emitted") or []
        seen = StatusSeen(
            at,
            source_id,
            record_id,
            status if isinstance(status, str) else None,
            tuple(str(e) for e in emitted) if isinstance(emitted, list) else (),
        )
        key = (source_id, record_id)
        record = self._record(key)
        self._processed_until[key] = _latest(self._processed_until.get(key), at)
        self._step(record, Step(at, "status", f"validated; status is now {seen.status}"))
        self.messages += 1

    def add_sweep_mark(self, source_id: str, module: str, mark: SweepMark) -> None:
        """The sweep's mark for one module: written when a sweep read further."""
        activity = self._source(source_id)
        activity.sweep_marks[module] = (mark.updated_at, mark.mark)
        self.messages += 1

    def add_conversion(self, event: ConversionEvent) -> None:
        seen = ConversionSeen(
            at=event.event_time,
            event_id=event.event_id,
            source_id=event.source_id,
            record_id=event.record_id,
            cdp_id=event.cdp_id,
            event_name=event.event_name,
            status=event.status,
            previous_status=event.previous_status,
            value=event.value,
            currency=event.currency,
            test=event.test,
            identifiers=frozenset(
                name for name in IDENTIFIERS if getattr(event.user_data, name, None)
            ),
        )
        activity = self._source(seen.source_id)
        activity.conversions.append(seen)
        activity.windows["conversions"].add(seen.at)
        activity.last_conversion = _latest(activity.last_conversion, seen.at)
        key = (seen.source_id, seen.record_id)
        record = self._record(key)
        _add(record.event_ids, seen.event_id)
        _add(record.cdp_ids, seen.cdp_id)
        self._by_event[seen.event_id] = key
        self._link_cdp_id(seen.cdp_id, key)
        self._converted_at.add((key, seen.at))
        value = f"{seen.value} {seen.currency}" if seen.value is not None else "no value"
        self._step(
            record,
            Step(
                seen.at,
                "converted",
                f"{'test ' if seen.test else ''}{seen.event_name} emitted "
                f"({seen.previous_status or 'new'} → {seen.status}, {value})",
                (("event", seen.event_id),),
            ),
        )
        self.messages += 1

    def add_delivery(self, receipt: DeliveryReceipt) -> None:
        seen = DeliverySeen(receipt.delivered_at, receipt.event_id, receipt.cdp_status)
        self._delivered[seen.event_id] = seen
        record = self._record((receipt.source_id, receipt.record_id))
        self._step(
            record,
            Step(
                seen.at,
                "delivered",
                f"delivered to the CDP (HTTP {seen.cdp_status})",
                (("event", seen.event_id),),
            ),
        )
        self.messages += 1

    def add_dead_letter(self, rejected: RejectedConversion) -> None:
        event = rejected.event
        seen = DeadLetterSeen(
            rejected.rejected_at,
            event.event_id if event else None,
            event.source_id if event else "",
            event.record_id if event else "",
            rejected.reason,
            rejected.cdp_status,
            rejected.cdp_response,
        )
        activity = self._source(seen.source_id)
        activity.dead_letters.append(seen)
        activity.windows["dl"].add(seen.at)
        if seen.event_id:
            self._dead[seen.event_id] = seen
        answer = f"HTTP {seen.cdp_status}" if seen.cdp_status else "no answer"
        record = self._record((seen.source_id, seen.record_id))
        ids = (("event", seen.event_id),) if seen.event_id else ()
        self._step(
            record,
            Step(
                seen.at,
                "dead-lettered",
                f"refused by the CDP ({answer}): {seen.cdp_response or seen.reason}",
                ids,
            ),
        )
        self.messages += 1

    # -- what the pages ask

    def source_ids(self) -> list[str]:
        return sorted(self._sources)

    def health(self, source_id: str, now: datetime) -> Health:
        activity = self._sources.get(source_id)
        if activity is None:
            return Health(source_id, None, None, 0, 0, 0, 0)
        w = activity.windows
        marks = activity.sweep_marks.values()
        return Health(
            source_id,
            activity.last_webhook,
            activity.last_conversion,
            w["webhooks"].count(now),
            w["conversions"].count(now),
            w["invalid"].count(now),
            w["dl"].count(now),
            max((updated for updated, _ in marks), default=None),
            max((read for _, read in marks), default=None),
        )

    def recent_webhooks(self, source_id: str, limit: int = 20) -> list[WebhookRow]:
        activity = self._sources.get(source_id)
        if activity is None:
            return []
        rows = []
        for seen in _newest(activity.webhooks, limit):
            key = (seen.source_id, seen.record_id)
            reasons = self._parked.get(seen.envelope_id)
            if reasons is not None:
                outcome = "parked"
            elif (key, seen.at) in self._converted_at:
                outcome = "converted"
            elif seen.at <= self._processed_until.get(key, seen.at - DAY):
                outcome = "validated"
            else:
                outcome = "waiting for the worker"
            rows.append(WebhookRow(seen, outcome, reasons or ()))
        return rows

    def recent_conversions(self, source_id: str, limit: int = 20) -> list[ConversionRow]:
        activity = self._sources.get(source_id)
        if activity is None:
            return []
        return [
            ConversionRow(seen, self._delivery_of(seen.event_id))
            for seen in _newest(activity.conversions, limit)
        ]

    def recent_invalid(self, source_id: str, limit: int = 20) -> list[InvalidSeen]:
        activity = self._sources.get(source_id)
        return _newest(activity.invalid, limit) if activity else []

    def recent_dead_letters(self, source_id: str, limit: int = 20) -> list[DeadLetterSeen]:
        activity = self._sources.get(source_id)
        return _newest(activity.dead_letters, limit) if activity else []

    def identifier_share(self, source_id: str) -> tuple[int, dict[str, float]]:
        """How many of the recent conversions carried each identifier."""
        activity = self._sources.get(source_id)
        conversions = list(activity.conversions) if activity else []
        if not conversions:
            return 0, dict.fromkeys(IDENTIFIERS, 0.0)
        counts = Counter(name for seen in conversions for name in seen.identifiers)
        return len(conversions), {n: counts[n] / len(conversions) for n in IDENTIFIERS}

    def trace(self, query: str) -> list[RecordTrace]:
        """Records matching a CDP ID, record id, envelope id or event id."""
        text = query.strip()
        if not text:
            return []
        keys: list[RecordKey] = []
        for found in (
            self._by_envelope.get(text),
            self._by_event.get(text),
            *sorted(self._by_cdp_id.get(text, ())),
            *sorted(self._by_record_id.get(text, ())),
        ):
            if found is not None and found not in keys and found in self._records:
                keys.append(found)
        return [self._trace_of(key) for key in keys[:20]]

    # -- bookkeeping

    def _delivery_of(self, event_id: str) -> str:
        if event_id in self._delivered:
            return "delivered"
        if event_id in self._dead:
            return "dead-lettered"
        return "not yet"

    def _trace_of(self, key: RecordKey) -> RecordTrace:
        record = self._records[key]
        steps = sorted(record.steps, key=lambda step: (step.at, _ORDER.get(step.kind, 9)))
        return RecordTrace(key[0], key[1], tuple(sorted(record.cdp_ids)), tuple(steps))

    def _source(self, source_id: str) -> _SourceActivity:
        activity = self._sources.get(source_id)
        if activity is None:
            activity = self._sources[source_id] = _SourceActivity(self.per_source)
        return activity

    def _record(self, key: RecordKey) -> _Record:
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = _Record()
            self._by_record_id.setdefault(key[1], []).append(key)
            if len(self._records) > self.max_records:
                self._forget(*self._records.popitem(last=False))
        else:
            self._records.move_to_end(key)
        return record

    def _forget(self, key: RecordKey, record: _Record) -> None:
        for envelope_id in record.envelope_ids:
            self._by_envelope.pop(envelope_id, None)
            self._parked.pop(envelope_id, None)
        for event_id in record.event_ids:
            self._by_event.pop(event_id, None)
            self._delivered.pop(event_id, None)
            self._dead.pop(event_id, None)
        for cdp_id in record.cdp_ids:
            _unlink(self._by_cdp_id, cdp_id, key)
        _unlink(self._by_record_id, key[1], key)
        self._processed_until.pop(key, None)
        for step in record.steps:
            self._converted_at.discard((key, step.at))

    def _link_cdp_id(self, cdp_id: str, key: RecordKey) -> None:
        if cdp_id:
            keys = self._by_cdp_id.setdefault(cdp_id, [])
            if key not in keys:
                keys.append(key)

    def _step(self, record: _Record, step: Step) -> None:
        record.steps.append(step)
        if len(record.steps) > self.steps_per_record:
            del record.steps[0]


_ORDER = {
    "received": 0,
    "parked": 1,
    "status": 2,
    "converted": 3,
    "delivered": 4,
    "dead-lettered": 4,
}


def _latest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current


def _newest(items: Iterable[T], limit: int) -> list[T]:
    return list(reversed(list(items)))[:limit]
