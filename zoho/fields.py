"""The modules the pipeline reads and their fields: the parameter names a workflow
webhook sends (as the CRM admin types them, compared once normalised) and the API names
the CRM API answers with."""

import functools
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import TypeVar


class Module(StrEnum):
    LEADS = "Leads"
    DEALS = "Deals"


T = TypeVar("T")

# Labels a worker normalises again and again are cached up to this length, so a hostile
# webhook's huge names or statuses cannot fill its memory.
CACHED_TEXT_MAX = 128


def cached_for_labels(normalise: Callable[[str], T]) -> Callable[[str], T]:
    """`normalise`, remembering its answers for texts up to CACHED_TEXT_MAX characters:
    each webhook sends a dozen or more labels, from the few a source's workflow uses."""
    cached = functools.lru_cache(maxsize=4096)(normalise)

    @functools.wraps(normalise)
    def normalised(text: str) -> T:
        return cached(text) if len(text) <= CACHED_TEXT_MAX else normalise(text)

    return normalised


@cached_for_labels
def normalise_field_name(name: str) -> str:
    """Zoho labels arrive as 'Lead Status' or 'lead_status': compare them one way."""
    return name.strip().lower().replace(" ", "_")


RECORD_ID_FIELDS = {Module.LEADS: "lead_id", Module.DEALS: "deal_id"}
STATUS_FIELDS = {Module.LEADS: "lead_status", Module.DEALS: "stage"}
# A lead's amount field is the source's choice (annual_revenue by default); a deal's is
# always its amount.
DEAL_AMOUNT_FIELD = "amount"
CDP_ID_FIELD = "cdp_id"
MODIFIED_BY_FIELD = "modified_by"

PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "street",
    "city",
    "state",
    "zip_code",
    "country",
    "title",
)
IDENTITY_FIELDS = ("email", "phone", "mobile", *PROFILE_FIELDS)

# The CRM API's names, where they are not a webhook name in another case.
STATUS_API_NAMES = {Module.LEADS: "Lead_Status", Module.DEALS: "Stage"}
API_NAME_ALIASES = {"title": "designation"}
# A webhook parameter the CRM admin may add (the README says how): the record's
# Modified_Time, the best time the pipeline knows for a live webhook's change.
MODIFIED_TIME_FIELD = "modified_time"
MODIFIED_BY_API_NAME = "Modified_By"
MODIFIED_TIME_API_NAME = "Modified_Time"
# Identity fields by their API names, as GET /crm/v8/Leads answers them.
IDENTITY_API_NAMES = {
    "email": "Email",
    "phone": "Phone",
    "mobile": "Mobile",
    "first_name": "First_Name",
    "last_name": "Last_Name",
    "street": "Street",
    "city": "City",
    "state": "State",
    "zip_code": "Zip_Code",
    "country": "Country",
    "title": "Designation",
}


def api_name(webhook_name: str) -> str:
    """The API name of a standard field from its webhook name: annual_revenue is
    Annual_Revenue. Custom fields follow the same rule when their admin kept it."""
    return "_".join(part[:1].upper() + part[1:] for part in webhook_name.split("_"))


def module_of(field_names: Iterable[str]) -> Module:
    """A webhook is about a deal when it carries a deal id and no lead id."""
    names = set(field_names)
    deal, lead = RECORD_ID_FIELDS[Module.DEALS], RECORD_ID_FIELDS[Module.LEADS]
    return Module.DEALS if deal in names and lead not in names else Module.LEADS


def amount_field(module: Module, lead_amount_field: str) -> str:
    return DEAL_AMOUNT_FIELD if module is Module.DEALS else lead_amount_field


def required_fields(module: Module, lead_amount_field: str) -> tuple[str, ...]:
    """The five fields a webhook of the module must send, in the order people read them."""
    return (
        RECORD_ID_FIELDS[module],
        CDP_ID_FIELD,
        STATUS_FIELDS[module],
        amount_field(module, lead_amount_field),
        MODIFIED_BY_FIELD,
    )
