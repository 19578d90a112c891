"""Builders for test values: a realistic default, varied by keyword."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.conversion import ConversionEvent, UserData
from schemas.records import RecordChange
from schemas.source import SourceConfig
from schemas.sources_file import parse_sources
from zoho.fields import Module

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


def conversion_event(**overrides: Any) -> ConversionEvent:
    return ConversionEvent.model_validate(
        {
            "event_id": "0b6f5a9e-35c4-8d6e-9b9a-1c2d3e4f5a6b",
            "event_name": "ConvertedLead",
            "event_time": RECEIVED_AT,
            "source_id": "shop",
            "module": Module.LEADS,
            "record_id": "1",
            "cdp_id": "cdp-1",
            "status": "Pre-Qualified",
            "previous_status": None,
            "value": Decimal("1500.15"),
            "original_value": Decimal("1000.10"),
            "currency": "USD",
            "exchange_rate": Decimal("1.5"),
            "modified_by": "jane@example.com",
            "user_data": UserData(),
        }
        | overrides
    )


ZOHO_SOURCE_KEY = "shop-api-key-0123456789"


def zoho_source(**fields: object) -> SourceConfig:
    """A source set up for the Zoho code exchange, in the EU data centre."""
    entry = {
        "id": "shop",
        "api_key": ZOHO_SOURCE_KEY,
        "exchange_rate": "1",
        "currency": "USD",
        "client_id": "1000.CLIENT",
        "client_secret": "the-client-secret",
        "accounts_url": "https://accounts.zoho.eu",
    } | fields
    return parse_sources([entry], {})["shop"]
