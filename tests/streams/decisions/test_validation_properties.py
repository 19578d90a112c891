"""Whatever parameters an accepted webhook carries, validation answers a record change or
InvalidWebhook with reasons; never another exception."""

from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.envelope import RawEnvelope
from schemas.records import RecordChange
from schemas.source import SourceConfig
from streams.decisions.validation import InvalidWebhook, validate

SOURCES = [
    SourceConfig.model_validate(
        {"id": "shop", "api_key": "k" * 32, "exchange_rate": "1.5", "currency": "USD"} | extra
    )
    for extra in ({}, {"amount_field": "Amount Paid"})
]
FIELD_NAMES = st.sampled_from(
    [
        "lead_id",
        "Lead Id",
        " LEAD_ID ",
        "deal_id",
        "cdp_id",
        "lead_status",
        "Lead Status",
        "stage",
        "annual_revenue",
        "Annual Revenue",
        "amount",
        "amount_paid",
        "Amount Paid",
        "modified_by",
        "email",
        "phone",
        "country",
    ]
) | st.text(max_size=12)
AMOUNTS = st.sampled_from(
    [
        "1e309",
        "NaN",
        "inf",
        "-0",
        "-0.0",
        "1" * 5000,
        "9" * 400 + ".5",
        "$1,000.10",
        "1,5",
        "€",
        "US$ 12",
        "١٢٣",
        "12\u00a0000",
        "0x10",
    ]
) | st.text(max_size=20)
VALUES = AMOUNTS | st.text()


@settings(max_examples=500)
@given(st.dictionaries(FIELD_NAMES, VALUES, max_size=12), st.sampled_from(SOURCES))
@example({"lead_id": "1", "cdp_id": "c", "lead_status": "x", "modified_by": "m"}, SOURCES[0])
@example(
    {
        "lead_id": "1",
        "Lead Id": "2",
        "cdp_id": "c",
        "lead_status": "Pre-Qualified",
        "annual_revenue": "1" * 5000,
        "modified_by": "m",
    },
    SOURCES[0],
)
def test_validation_answers_a_change_or_its_reasons(
    parameters: dict[str, str], source: SourceConfig
) -> None:
    envelope = RawEnvelope(
        envelope_id="e",
        source_id="shop",
        received_at=datetime(2024, 1, 1, tzinfo=UTC),
        parameters=parameters,
    )
    try:
        change = validate(envelope, source)
    except InvalidWebhook as invalid:
        assert invalid.reasons and all(isinstance(reason, str) for reason in invalid.reasons)
        return
    assert isinstance(change, RecordChange)
    assert change.record_id and change.cdp_id and change.status and change.modified_by
    assert change.amount is None or (change.amount.is_finite() and change.amount >= 0)
