from datetime import UTC, datetime

from schemas.envelope import RawEnvelope
from schemas.source import SourceConfig
from streams.commands.backfill_plan import BackfillTally, summary_text

SOURCE = SourceConfig.model_validate(
    {
        "id": "acme",
        "api_key": "k" * 32,
        "exchange_rate": "1",
        "currency": "USD",
        "status_map": {"Leads": {"Contacted": "Lead"}},
    }
)


def envelope(**parameters: str) -> RawEnvelope:
    return RawEnvelope(
        envelope_id="e",
        source_id="acme",
        received_at=datetime(2024, 5, 1, tzinfo=UTC),
        parameters=parameters,
        origin="backfill",
    )


def test_envelopes_are_counted_by_the_event_their_status_maps_to() -> None:
    tally = BackfillTally(records=5, without_cdp_id=1, envelopes=4, calls=3)
    for fields in (
        {"lead_id": "1", "lead_status": "Pre-Qualified"},
        {"lead_id": "2", "lead_status": "pre qualified"},
        {"lead_id": "3", "lead_status": "Contacted"},
        {"lead_id": "4", "lead_status": "New"},
        {"deal_id": "5", "stage": "Closed Won"},
    ):
        tally.count(envelope(**fields), SOURCE)
    assert dict(tally.by_event) == {"ConvertedLead": 2, "Lead": 1, "Purchase": 1}
    text = summary_text(tally, source_id="acme", topic="zoho.webhooks.raw", dry_run=True)
    assert text.splitlines() == [
        "source acme: read 5 records (1 without a CDP ID, skipped) in 3 Zoho API calls",
        "would publish 4 envelopes to zoho.webhooks.raw (0 statuses recovered from timelines)",
        "in a mapped status, by event: ConvertedLead 2, Lead 1, Purchase 1 (the worker "
        "converts each record and event once: those already converted are not sent again)",
        "dry run: nothing was sent",
    ]


def test_a_real_run_says_published() -> None:
    text = summary_text(BackfillTally(), source_id="acme", topic="t", dry_run=False)
    assert "published 0 envelopes" in text and "by event: none" in text
    assert "dry run" not in text
