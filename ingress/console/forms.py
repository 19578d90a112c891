"""The create-a-source form: what the browser posts, turned into the source model's input,
and the model's validation messages put back beside each field. Pure."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from zoho.accounts import DATA_CENTRES
from zoho.fields import PROFILE_FIELDS, Module

FORM_FIELDS = (
    "id",
    "exchange_rate",
    "currency",
    "client_id",
    "client_secret",
    "accounts_url",
    "refresh_token",
    "amount_field",
    "default_country",
    "status_map",
    "pass_through",
    "verify",
    "enrich",
)
GENERAL = "__all__"
ACCOUNTS_URLS = tuple(f"https://{centre}" for centre in DATA_CENTRES)


class FormProblem(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class SourceForm:
    values: dict[str, Any]  # what the source model validates
    shown: dict[str, str]  # what the form shows again, without secrets


def read_form(form: Mapping[str, str], pass_through: list[str]) -> SourceForm:
    """Raises FormProblem for what the model cannot say itself (a status-map line)."""
    text = {name: form.get(name, "").strip() for name in FORM_FIELDS}
    values: dict[str, Any] = {
        "id": text["id"],
        "exchange_rate": text["exchange_rate"],
        "currency": text["currency"],
        "client_id": text["client_id"],
        "client_secret": text["client_secret"],
        "accounts_url": text["accounts_url"] or ACCOUNTS_URLS[0],
        "refresh_token": text["refresh_token"],
        "amount_field": text["amount_field"] or "annual_revenue",
        "default_country": text["default_country"] or None,
        "pass_through": tuple(pass_through),
        "verify": form.get("verify") == "on",
        "enrich": form.get("enrich") == "on",
        "status_map": parse_status_map(text["status_map"]),
    }
    shown = {k: v for k, v in text.items() if k not in ("client_secret", "refresh_token")}
    return SourceForm(values, shown)


def parse_status_map(text: str) -> dict[str, dict[str, str]]:
    """Lines of `Module: Zoho status = Event`, e.g. `Leads: Contacted = Lead`."""
    mapping: dict[str, dict[str, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        module, colon, rest = line.partition(":")
        status, equals, event = rest.partition("=")
        if not (colon and equals) or module.strip() not in {m.value for m in Module}:
            raise FormProblem(
                "status_map",
                f"line {number}: write `Leads: Zoho status = Event` (or Deals: …)",
            )
        mapping.setdefault(module.strip(), {})[status.strip()] = event.strip()
    return mapping


def field_errors(error: ValidationError) -> dict[str, str]:
    """The model's messages by form field; a rule across fields goes to GENERAL."""
    messages: dict[str, list[str]] = {}
    for problem in error.errors(include_input=False, include_url=False):
        location = problem["loc"]
        field = str(location[0]) if location and location[0] in FORM_FIELDS else GENERAL
        message = str(problem["msg"]).removeprefix("Value error, ")
        messages.setdefault(field, []).append(message)
    return {field: "; ".join(texts) for field, texts in messages.items()}


PASS_THROUGH_CHOICES = PROFILE_FIELDS
