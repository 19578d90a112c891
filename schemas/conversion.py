"""The conversion event: what cdp.conversions carries and what the CDP receives."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from zoho.fields import Module

# Where event_time came from, best first: the timeline's change time, the record's
# Modified_Time, or when the ingress received the webhook.
EventTimeSource = Literal["timeline", "modified_time", "received"]


class UserData(BaseModel):
    """SHA-256 hex of normalised identifiers, under the names ad platforms use."""

    model_config = ConfigDict(frozen=True)

    em: list[str] = Field(default_factory=list, description="Email.")
    ph: list[str] = Field(default_factory=list, description="Phone: digits with country code.")
    ph_e164: list[str] = Field(default_factory=list, description="Phone in E.164, with '+'.")
    fn: list[str] = Field(default_factory=list, description="First name.")
    ln: list[str] = Field(default_factory=list, description="Last name.")
    ct: list[str] = Field(default_factory=list, description="City.")
    st: list[str] = Field(default_factory=list, description="State or province.")
    zp: list[str] = Field(default_factory=list, description="Zip or postal code.")
    country: list[str] = Field(default_factory=list, description="ISO 3166 alpha-2 country.")


class ConversionEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    event_id: str = Field(description="Same source, module, record and event name: same id.")
    event_name: str = Field(description="Standard event, e.g. ConvertedLead or Purchase.")
    event_time: datetime = Field(description="When the status changed, as near as known.")
    event_time_source: EventTimeSource | None = Field(
        default=None,
        description="`timeline` (the CRM's change time), `modified_time` (the record's "
        "Modified_Time) or `received` (when the webhook arrived). Absent in older events.",
    )
    late: bool = Field(
        default=False,
        description="event_time is older than the pipeline's late limit (7 days by default) "
        "when the event was made: ad platforms may refuse or misattribute it.",
    )
    source_id: str
    module: Module
    record_id: str
    cdp_id: str
    status: str
    previous_status: str | None
    value: Decimal | None = Field(description="Amount in `currency`, rounded to minor units.")
    original_value: Decimal | None = Field(description="Amount as the CRM sent it.")
    currency: str
    exchange_rate: Decimal
    modified_by: str
    user_data: UserData
    profile: dict[str, str] = Field(
        default_factory=dict,
        description="Plain profile fields the source chose to pass through unhashed.",
    )
    test: bool = Field(
        default=False,
        description="Sent from the operator console to check a source: not a real conversion.",
    )


class DeliveryReceipt(BaseModel):
    """A conversion the CDP accepted: written by the sink once the CDP answered 2xx."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    event_id: str
    source_id: str
    record_id: str
    cdp_id: str
    event_name: str
    test: bool = False
    cdp_status: int = Field(description="The CDP's HTTP status for the batch.")
    delivered_at: datetime


class RejectedConversion(BaseModel):
    """A conversion the CDP refused for good, with its answer."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    event: ConversionEvent | None = Field(description="The event, when it could be decoded.")
    raw_value: str | None = Field(default=None, description="The message, when it could not.")
    reason: str
    cdp_status: int | None = Field(description="The CDP's HTTP status, if it answered.")
    cdp_response: str = Field(default="", description="The start of the CDP's answer.")
    rejected_at: datetime
