"""A source: one client's Zoho CRM feeding the CDP, as the operator configured it."""

import re
from datetime import datetime
from decimal import Decimal

from babel.numbers import list_currencies
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    SecretStr,
    field_validator,
    model_validator,
)

from zoho.accounts import DEFAULT_ACCOUNTS_URL
from zoho.fields import PROFILE_FIELDS, Module, cached_for_labels, normalise_field_name

_STATUS_NOISE = re.compile(r"[\s_-]+")
ISO_4217 = frozenset(list_currencies())
_CURRENCY_CODES: list[JsonValue] = [*sorted(ISO_4217)]
_PROFILE_FIELD_NAMES: list[JsonValue] = [*PROFILE_FIELDS]


@cached_for_labels
def normalise_status(text: str) -> str:
    """Zoho labels are edited by hand: "Pre-Qualified", "pre qualified", "PRE_QUALIFIED"."""
    return _STATUS_NOISE.sub("", text).casefold()


class SourceConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    api_key: SecretStr
    exchange_rate: Decimal = Field(gt=0)
    # The schemas list what validates (the validators also take lower case and spaces).
    currency: str = Field(json_schema_extra={"enum": _CURRENCY_CODES})
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")
    accounts_url: str = Field(
        default=DEFAULT_ACCOUNTS_URL, json_schema_extra={"pattern": r"^https?://[^/\s]+"}
    )
    refresh_token: SecretStr = SecretStr("")
    amount_field: str = "annual_revenue"
    status_map: dict[Module, dict[str, str]] = Field(default_factory=dict)
    default_country: str | None = Field(default=None, pattern=r"^\s*[A-Za-z]{2}\s*$")
    pass_through: tuple[str, ...] = Field(
        default=(), json_schema_extra={"items": {"enum": _PROFILE_FIELD_NAMES}}
    )
    verify: bool = Field(
        default=False,
        description="Confirm each converting webhook through the Zoho CRM API before emitting.",
    )
    enrich: bool = Field(
        default=False,
        description="Fill a missing amount or profile field from the Zoho CRM record.",
    )
    cdp_id_field: str = Field(
        default="CDP_ID",
        pattern=r"^[A-Za-z0-9_]{1,100}$",
        description="API name of the custom field holding the CDP ID, for records read "
        "from the CRM API.",
    )
    sweep: bool = Field(
        default=True,
        description="Read the CRM API on the worker's sweep interval for conversions Zoho "
        "failed to post; needs client_id, client_secret and refresh_token.",
    )
    enabled: bool = Field(
        default=True,
        description="A disabled source's URL answers 410 and its webhooks convert nothing.",
    )
    # After a key rotation the previous key keeps working until this moment.
    previous_api_key: SecretStr = SecretStr("")
    previous_api_key_expires_at: datetime | None = None

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in ISO_4217:
            raise ValueError(f"{value!r} is not an ISO 4217 currency code")
        return code

    @field_validator("api_key")
    @classmethod
    def _non_empty_key(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("accounts_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("amount_field")
    @classmethod
    def _normalised_name(cls, value: str) -> str:
        return normalise_field_name(value)

    @field_validator("status_map")
    @classmethod
    def _distinct_statuses(
        cls, value: dict[Module, dict[str, str]]
    ) -> dict[Module, dict[str, str]]:
        for module, mapping in value.items():
            seen: dict[str, str] = {}
            for status in mapping:
                twin = seen.setdefault(normalise_status(status), status)
                if twin != status:
                    raise ValueError(f"{module.value}: {twin!r} and {status!r} are one status")
        return value

    @field_validator("default_country")
    @classmethod
    def _region_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"[A-Za-z]{2}", value.strip()):
            raise ValueError(f"{value!r} is not a two-letter country code")
        return value.strip().upper()

    @field_validator("pass_through")
    @classmethod
    def _known_profile_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(PROFILE_FIELDS))
        if unknown:
            raise ValueError(f"unknown profile fields {unknown}; known: {list(PROFILE_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _api_credentials(self) -> "SourceConfig":
        if not (self.verify or self.enrich):
            return self
        missing = [
            name
            for name, present in (
                ("client_id", bool(self.client_id)),
                ("client_secret", bool(self.client_secret.get_secret_value())),
                ("refresh_token", bool(self.refresh_token.get_secret_value())),
            )
            if not present
        ]
        if missing:
            # A start-up error beats parking every webhook of the source later.
            raise ValueError(
                f"verify and enrich call the Zoho CRM API and need {', '.join(missing)}; "
                "the source URL with &zoho_code=<code> gives the refresh token"
            )
        return self
