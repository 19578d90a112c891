"""Zoho's answers as fixture files, shaped like the CRM API's real ones."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def answer(name: str) -> dict[str, Any]:
    """A fixture, read the way the client reads record answers (exact amounts)."""
    document: dict[str, Any] = json.loads(
        (FIXTURES / name).read_text(encoding="utf-8"), parse_float=Decimal
    )
    return document
