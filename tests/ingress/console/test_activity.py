"""The console's index: what a source page and a trace show, from the pipeline's messages."""

from datetime import timedelta
from decimal import Decimal

from ingress.console.activity import ActivityIndex
from schemas.conversion import DeliveryReceipt, RejectedConversion, UserData
from schemas.envelope import RawEnvelope
from schemas.records import InvalidRecord
from schemas.sweep import SweepMark
from tests.builders import RECEIVED_AT, conversion_event

NOW = RECEIVED_AT + timedelta(minutes=5)


def envelope(record_id: str = "1", at_s: int = 0, **params: str) -> RawEnvelope:
    return RawEnvelope(
        envelope_id=f"env-{record_id}-{at_s}",
        source_id="shop",
        received_at=RECEIVED_AT + timedelta(seconds=at_s),
        parameters={"Lead Id": record_id, "cdp_id": f"cdp-{record_id}", "Lead Status": "New"}
        | params,
    )


def parked(env: RawEnvelope, *reasons: str) -> InvalidRecord:
    return InvalidRecord(
        reasons=list(reasons) or ["missing field 'cdp_id'"],
        envelope=env,
        topic="zoho.webhooks.raw",
        partition=0,
        offset=1,
        rejected_at=env.received_at + timedelta(seconds=1),
    )


def receipt(event_id: str, record_id: str = "1") -> DeliveryReceipt:
    return DeliveryReceipt(
        event_id=event_id,
        source_id="shop",
        record_id=record_id,
        cdp_id=f"cdp-{record_id}",
        event_name="ConvertedLead",
        cdp_status=202,
        delivered_at=RECEIVED_AT + timedelta(seconds=3),
    )


def state(status: str, at_s: int) -> dict[str, object]:
    at = (RECEIVED_AT + timedelta(seconds=at_s)).isoformat()
    return {"last_status": status, "last_seen_at": at, "emitted": []}


def test_a_webhook_reads_its_record_status_and_cdp_id_from_zoho_spellings() -> None:
    index = ActivityIndex()
    index.add_webhook(envelope("42", **{"Lead Status": "Contacted"}))
    [row] = index.recent_webhooks("shop")
    assert (row.seen.record_id, row.seen.cdp_id, row.seen.status) == ("42", "cdp-42", "Contacted")
    assert row.outcome == "waiting for the worker"


def test_the_outcome_follows_what_the_worker_wrote() -> None:
    index = ActivityIndex()
    index.add_webhook(envelope("1", 0))
    index.add_webhook(envelope("1", 10))
    index.add_webhook(envelope("2", 0))
    index.add_webhook(envelope("3", 0))
    index.add_status("shop", "1", state("New", 10))
    index.add_invalid(parked(envelope("2", 0)), None)
    index.add_conversion(conversion_event(record_id="3", cdp_id="cdp-3", event_time=RECEIVED_AT))
    outcomes = {(r.seen.record_id, r.seen.at): r.outcome for r in index.recent_webhooks("shop")}
    assert outcomes == {
        # A state written for the later webhook means the earlier one was handled too.
        ("1", RECEIVED_AT + timedelta(seconds=10)): "validated",
        ("1", RECEIVED_AT): "validated",
        ("2", RECEIVED_AT): "parked",
        ("3", RECEIVED_AT): "converted",
    }


def test_a_conversion_is_delivered_dead_lettered_or_not_yet() -> None:
    index = ActivityIndex()
    for n in ("1", "2", "3"):
        index.add_conversion(conversion_event(event_id=f"ev-{n}", record_id=n, cdp_id=f"cdp-{n}"))
    index.add_delivery(receipt("ev-1"))
    index.add_dead_letter(
        RejectedConversion(
            event=conversion_event(event_id="ev-2", record_id="2"),
            reason="rejected by the CDP",
            cdp_status=400,
            cdp_response='{"error": "bad cdp_id"}',
            rejected_at=NOW,
        )
    )
    rows = {row.seen.event_id: row.delivery for row in index.recent_conversions("shop")}
    assert rows == {"ev-1": "delivered", "ev-2": "dead-lettered", "ev-3": "not yet"}
    [dead] = index.recent_dead_letters("shop")
    assert (dead.cdp_status, dead.cdp_response) == (400, '{"error": "bad cdp_id"}')


def test_health_counts_the_last_24_hours_only() -> None:
    index = ActivityIndex()
    index.add_webhook(envelope("old", -25 * 3600))
    index.add_webhook(envelope("new", 0))
    index.add_invalid(parked(envelope("new", 0), "missing field 'cdp_id'"), None)
    health = index.health("shop", NOW)
    assert (health.webhooks_24h, health.invalid_24h, health.conversions_24h) == (1, 1, 0)
    assert health.last_webhook == RECEIVED_AT
    assert index.health("nobody", NOW).webhooks_24h == 0


def test_the_identifier_share_says_which_fields_the_webhook_forgot() -> None:
    index = ActivityIndex()
    index.add_conversion(conversion_event(event_id="a", user_data=UserData(em=["h"], ph=["h"])))
    index.add_conversion(conversion_event(event_id="b", user_data=UserData(em=["h"])))
    total, share = index.identifier_share("shop")
    assert total == 2
    assert (share["em"], share["ph"], share["fn"]) == (1.0, 0.5, 0.0)


def test_a_trace_is_found_by_each_id_and_tells_the_path_in_order() -> None:
    index = ActivityIndex()
    env = envelope("7", 0, **{"Lead Status": "Pre-Qualified"})
    index.add_webhook(env)
    index.add_status("shop", "7", state("Pre-Qualified", 0))
    index.add_conversion(
        conversion_event(
            event_id="ev-7", record_id="7", cdp_id="cdp-7", value=Decimal("15.00"), currency="EUR"
        )
    )
    index.add_delivery(receipt("ev-7", "7"))
    for query in ("cdp-7", "7", env.envelope_id, "ev-7"):
        [trace] = index.trace(query)
        assert (trace.source_id, trace.record_id) == ("shop", "7"), query
    kinds = [step.kind for step in trace.steps]
    assert kinds == ["received", "status", "converted", "delivered"]
    assert "15.00 EUR" in trace.steps[2].text
    assert index.trace("unknown") == []
    assert index.trace("  ") == []


def test_a_parked_webhook_shows_every_reason_in_its_trace() -> None:
    index = ActivityIndex()
    env = envelope("9")
    index.add_webhook(env)
    index.add_invalid(parked(env, "missing field 'cdp_id'", "field 'annual_revenue' is x"), None)
    [trace] = index.trace(env.envelope_id)
    assert [s.kind for s in trace.steps] == ["received", "parked"]
    assert "missing field 'cdp_id'; field 'annual_revenue' is x" in trace.steps[1].text
    [invalid] = index.recent_invalid("shop")
    assert len(invalid.reasons) == 2


def test_the_last_sweep_is_the_latest_mark_of_either_module() -> None:
    index = ActivityIndex()
    index.add_webhook(envelope("1"))
    assert index.health("shop", NOW).last_sweep is None
    leads = SweepMark(mark=RECEIVED_AT, updated_at=NOW)
    deals = SweepMark(mark=RECEIVED_AT - timedelta(hours=1), updated_at=NOW - timedelta(minutes=1))
    index.add_sweep_mark("shop", "Leads", leads)
    index.add_sweep_mark("shop", "Deals", deals)
    health = index.health("shop", NOW)
    assert (health.last_sweep, health.swept_to) == (NOW, RECEIVED_AT)


def test_an_envelope_the_sweep_made_says_so_in_the_trace() -> None:
    index = ActivityIndex()
    swept = envelope("5").model_copy(update={"origin": "sweep"})
    index.add_webhook(swept)
    [trace] = index.trace("5")
    assert trace.steps[0].text.startswith("sweep envelope received")


def test_clearing_forgets_everything() -> None:
    index = ActivityIndex()
    index.add_webhook(envelope("1"))
    index.clear()
    assert index.recent_webhooks("shop") == [] and index.trace("1") == [] and index.messages == 0


def test_memory_is_bounded_per_source_and_in_records() -> None:
    index = ActivityIndex(per_source=3, max_records=5)
    for n in range(20):
        index.add_webhook(envelope(str(n), n))
    assert [r.seen.record_id for r in index.recent_webhooks("shop")] == ["19", "18", "17"]
    assert index.trace("19") and not index.trace("0")
    assert not index.trace("env-0-0")
    assert index.trace("cdp-0") == []
