"""Realistic Zoho webhooks and the raw envelopes the ingress makes of them.

Seeded, so two runs measure the same work."""

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import yaml

from ingress.parsing import record_id
from schemas.envelope import RawEnvelope, record_key
from schemas.source import SourceConfig
from schemas.sources_file import parse_sources

SHOP_KEY = "bench-shop-api-key-0123456789"
YEN_KEY = "bench-yen-api-key-0123456789"
API_KEYS = {"shop": SHOP_KEY, "yen": YEN_KEY}

SOURCES_YAML = f"""
sources:
  - id: shop
    api_key: {SHOP_KEY}
    exchange_rate: "1.08"
    currency: USD
    default_country: DE
    status_map:
      Leads:
        Lost Lead: LeadLost
  - id: yen
    api_key: {YEN_KEY}
    exchange_rate: "150.123"
    currency: JPY
    default_country: JP
"""

LEAD_STATUSES = ("Not Contacted", "Contacted", "Pre-Qualified", "Lost Lead", "Junk Lead")
DEAL_STAGES = ("Qualification", "Needs Analysis", "Negotiation/Review", "Closed Won", "Closed Lost")
FIRST_NAMES = ("Anna", "Jürgen", "Zoë", "Li", "María José", "Kenji", "Olu")
LAST_NAMES = ("Müller", "O'Brien", "García Márquez", "Tanaka", "Smith-Jones", "Nguyen")
CITIES = ("Berlin", "München", "San Francisco", "Tokyo", "São Paulo", "Lagos")
COUNTRIES = ("Germany", "DE", "United States", "US", "Japan", "", "Atlantis")
ZIPS = ("10115", "80331", "94103-1234", "100-0001", "")
PHONES = (
    "+49 30 901820",
    "030 1234567",
    "(415) 555-0132",
    "+1 415 555 0132",
    "+81 3-1234-5678",
    "0151 23456789",
    "12",  # unusable: counted, not hashed
)
EMAILS = ("{n}@example.com", " {N}@Example.COM ", "{n}.sales@example.co.uk", "not-an-address")
AMOUNTS = ("1000", "1,000.10", "$2,500.00", "€ 99.90", "12500.5", "", "0.99")
BAD_AMOUNTS = ("abc", "1,5", "-100", "1e5")


def sources() -> dict[str, SourceConfig]:
    return parse_sources(yaml.safe_load(SOURCES_YAML)["sources"], {}, origin="bench")


@dataclass(frozen=True)
class Webhook:
    source_id: str
    fields: dict[str, str]
    cdp_id: str


def _identity(rng: random.Random, number: int) -> dict[str, str]:
    fields: dict[str, str] = {}
    if rng.random() < 0.7:
        fields["Email"] = rng.choice(EMAILS).format(n=f"user{number}", N=f"User{number}")
    if rng.random() < 0.5:
        fields["Phone"] = rng.choice(PHONES)
    if rng.random() < 0.2:
        fields["Mobile"] = rng.choice(PHONES)
    if rng.random() < 0.6:
        fields["First Name"] = rng.choice(FIRST_NAMES)
        fields["Last Name"] = rng.choice(LAST_NAMES)
    if rng.random() < 0.4:
        fields["City"] = rng.choice(CITIES)
        fields["Zip Code"] = rng.choice(ZIPS)
        fields["Country"] = rng.choice(COUNTRIES)
    return fields


def webhook(rng: random.Random, number: int, record: int, converting: bool) -> Webhook:
    """A lead or deal webhook; `converting` picks the status that maps to an event."""
    source_id = "shop" if rng.random() < 0.8 else "yen"
    cdp_id = f"cdp-{record:08d}-{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}"
    if rng.random() < 0.6:
        status = "Pre-Qualified" if converting else rng.choice(LEAD_STATUSES)
        fields = {
            "Lead Id": f"{4_000_000 + record}",
            "CDP ID": cdp_id,
            "Lead Status": status,
            "Annual Revenue": rng.choice(AMOUNTS),
            "Modified By": "jane.doe@example.com",
            "Lead Source": "Web Form",
            "Company": "Acme GmbH",
        } | _identity(rng, number)
    else:
        stage = "Closed Won" if converting else rng.choice(DEAL_STAGES)
        fields = {
            "deal_id": f"{9_000_000 + record}",
            "cdp_id": cdp_id,
            "stage": stage,
            "amount": rng.choice(AMOUNTS[:-2]),
            "modified_by": "sam.seller@example.com",
            "deal_name": "Acme renewal",
            "pipeline": "Standard",
        } | _identity(rng, number)
    return Webhook(source_id, fields, cdp_id)


def _broken(rng: random.Random, hook: Webhook) -> Webhook:
    fields = dict(hook.fields)
    damage = rng.randrange(3)
    if damage == 0:
        fields.pop(next(name for name in fields if name.lower().replace(" ", "_") == "cdp_id"))
    elif damage == 1:
        amount = next(name for name in fields if name.lower().replace(" ", "_") in _AMOUNTS)
        fields[amount] = rng.choice(BAD_AMOUNTS)
    else:
        fields = {name: value for name, value in fields.items() if "status" not in name.lower()}
        fields.pop("stage", None)
    return Webhook(hook.source_id, fields, hook.cdp_id)


_AMOUNTS = ("annual_revenue", "amount")


def envelope(hook: Webhook, received_at: datetime) -> RawEnvelope:
    return RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source_id=hook.source_id,
        received_at=received_at,
        method="POST",
        content_type="application/x-www-form-urlencoded",
        parameters=hook.fields,
    )


def kafka_key(hook: Webhook) -> bytes:
    return record_key(hook.source_id, record_id(hook.fields))


def decision_mix(count: int, seed: int = 7) -> list[bytes]:
    """Raw-topic message values as the worker reads them: records moving through their
    statuses (so most webhooks convert nothing), ~8% invalid webhooks and a few
    messages that are not envelopes at all."""
    rng = random.Random(seed)  # noqa: S311 - a seeded load, not a secret
    start = datetime(2025, 3, 1, tzinfo=UTC)
    records = max(1, count // 4)
    values: list[bytes] = []
    for number in range(count):
        hook = webhook(rng, number, rng.randrange(records), converting=rng.random() < 0.25)
        roll = rng.random()
        if roll < 0.08:
            hook = _broken(rng, hook)
        if roll > 0.995:
            values.append(b'{"schema_version": 1, "source_id": "shop", "parameters": ')
            continue
        received = start + timedelta(seconds=number)
        values.append(envelope(hook, received).model_dump_json().encode())
    return values


def converting_webhooks(count: int, first_record: int = 0, seed: int = 11) -> Iterator[Webhook]:
    """One webhook per record, each in a status that converts: every one of them reaches
    the CDP, so the CDP's count says when the pipeline is done."""
    rng = random.Random(seed)  # noqa: S311 - a seeded load, not a secret
    for number in range(count):
        yield webhook(rng, number, first_record + number, converting=True)


QUIET_LEAD_STATUSES = ("Not Contacted", "Contacted", "Attempted to Contact", "Junk Lead")
QUIET_DEAL_STAGES = ("Qualification", "Needs Analysis", "Negotiation/Review", "Closed Lost")
WEBHOOKS_PER_LEAD = (1, 2, 3, 4)


@dataclass(frozen=True)
class Backlog:
    """Raw-topic records (key, value) in the order they are produced, and how many
    conversions the worker emits for them."""

    records: list[tuple[bytes, bytes]]
    conversions: int


def _set_status(hook: Webhook, status: str) -> Webhook:
    field = "Lead Status" if "Lead Status" in hook.fields else "stage"
    return Webhook(hook.source_id, hook.fields | {field: status}, hook.cdp_id)


def backlog(count: int, converting_share: float, seed: int = 5, first_record: int = 0) -> Backlog:
    """Many leads and deals, one to four webhooks each, interleaved in time but in order
    per record; a converting record converts on its last webhook, so about
    `converting_share` of the webhooks convert."""
    rng = random.Random(seed)  # noqa: S311 - a seeded load, not a secret
    per_record_share = converting_share * sum(WEBHOOKS_PER_LEAD) / len(WEBHOOKS_PER_LEAD)
    lanes: list[list[Webhook]] = []
    conversions = 0
    total = 0
    while total < count:
        record = first_record + len(lanes)
        base = webhook(rng, total, record, converting=True)
        steps = min(rng.choice(WEBHOOKS_PER_LEAD), count - total)
        quiet = QUIET_LEAD_STATUSES if "Lead Status" in base.fields else QUIET_DEAL_STAGES
        hooks = [_set_status(base, rng.choice(quiet)) for _ in range(steps)]
        if rng.random() < per_record_share:
            hooks[-1] = base
            conversions += 1
        lanes.append(hooks)
        total += steps
    order = [lane for lane, hooks in enumerate(lanes) for _ in hooks]
    rng.shuffle(order)
    taken = [0] * len(lanes)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    records = []
    for number, lane in enumerate(order):
        hook = lanes[lane][taken[lane]]
        taken[lane] += 1
        value = envelope(hook, start + timedelta(milliseconds=number)).model_dump_json().encode()
        records.append((kafka_key(hook), value))
    return Backlog(records, conversions)


def form_webhook(rng: random.Random, number: int) -> tuple[str, dict[str, str]]:
    """A Zoho lead webhook as the ingress receives it: 16 form fields, about 600 bytes
    form-encoded."""
    fields = {
        "Lead Id": f"{5_725_767_000_000_000_000 + number}",
        "CDP ID": f"cdp-{number:010d}-{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}",
        "Lead Status": rng.choice(LEAD_STATUSES),
        "Annual Revenue": rng.choice(AMOUNTS[:-2]),
        "Modified By": "Jane Doe-Whitaker (jane.doe-whitaker@example.com)",
        "Lead Source": "Web Form — Spring Campaign 2026 (landing page B)",
        "Company": "Acme Industrial Supplies GmbH & Co. KG, Niederlassung Süd",
        "Email": f"user{number}.sales@example-company.co.uk",
        "Phone": rng.choice(PHONES[:-1]),
        "Mobile": rng.choice(PHONES[:-1]),
        "First Name": rng.choice(FIRST_NAMES),
        "Last Name": rng.choice(LAST_NAMES),
        "Street": "Friedrichstraße 123, Hinterhaus, 3. Obergeschoss links",
        "City": rng.choice(CITIES),
        "Zip Code": rng.choice(ZIPS[:-1]),
        "Country": rng.choice(COUNTRIES[:-2]),
    }
    return "shop", fields
