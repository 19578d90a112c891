"""`process` for what the sources decide: an unknown or disabled source converts nothing."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from schemas.envelope import RawEnvelope
from schemas.source import SourceConfig
from streams.decisions.process import Rejected, Tracked, process
from streams.decisions.status import RecordState

SOURCE = SourceConfig.model_validate(
    {"id": "shop", "api_key": "shop-api-key-0123456789", "exchange_rate": "2", "currency": "USD"}
)


def webhook(source_id: str = "shop") -> bytes:
    return (
        RawEnvelope(
            envelope_id="env-1",
            source_id=source_id,
            received_at=datetime(2024, 5, 1, tzinfo=UTC),
            method="POST",
            content_type="application/x-www-form-urlencoded",
            parameters={
                "lead_id": "L-1",
                "cdp_id": "cdp-1",
                "lead_status": "Pre-Qualified",
                "annual_revenue": "10",
                "modified_by": "jane@example.com",
            },
        )
        .model_dump_json()
        .encode()
    )


async def no_lookup(*_: Any) -> None:
    raise AssertionError("no lookup expected")


async def run(sources: dict[str, SourceConfig], raw: bytes) -> Tracked | Rejected:
    return await process(raw, sources, lambda _key: RecordState.empty(), no_lookup)


async def test_an_enabled_source_converts_with_its_current_rate() -> None:
    outcome = await run({"shop": SOURCE}, webhook())
    assert isinstance(outcome, Tracked) and outcome.conversion is not None
    assert str(outcome.conversion.value) == "20.00"
    repriced = SOURCE.model_copy(update={"exchange_rate": Decimal("3")})
    outcome = await run({"shop": repriced}, webhook())
    assert isinstance(outcome, Tracked) and outcome.conversion is not None
    assert str(outcome.conversion.value) == "30.00"


@pytest.mark.parametrize(
    ("sources", "reason"),
    [
        ({}, "unknown source 'shop'"),
        (
            {"shop": SOURCE.model_copy(update={"enabled": False})},
            "source 'shop' is disabled; replay it with `zoho-cdp-replay --only-invalid` "
            "once enabled",
        ),
    ],
)
async def test_an_unknown_or_disabled_source_converts_nothing(
    sources: dict[str, SourceConfig], reason: str
) -> None:
    outcome = await run(sources, webhook())
    assert isinstance(outcome, Rejected)
    assert outcome.reasons == [reason]
