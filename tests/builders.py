"""Builders for test values: a realistic default, varied by keyword."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.records import RecordChange
from schemas.source import Module

RECEIVED_AT = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def record_change(**overrides: Any) -> RecordChange:
    return RecordChange.model_validate(
        {
            "source_id": "acme",
            "module": Module.LEADS,
            "record_id": "5725767000000438001",
            "cdp_id": "cdp-7f3a9c",
            "status": "Pre-Qualified",
            "amount": Decimal("1234.50"),
            "modified_by": "Priya Raman",
            "profile": {},
            "envelope_id": "env-1",
            "received_at": RECEIVED_AT,
        }
        | overrides
    )
