"""A webhook that passed validation, and one that did not."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.conversion import EventTimeSource
from schemas.envelope import Origin, RawEnvelope
from zoho.fields import Module


class RecordChange(BaseModel):
    """What a valid webhook says about one Zoho record."""

    model_config = ConfigDict(frozen=True)

    source_id: str
    module: Module
    record_id: str
    cdp_id: str
    status: str
    amount: Decimal | None
    modified_by: str
    profile: dict[str, str] = Field(
        default_factory=dict, description="email, phone and profile fields, as sent."
    )
    envelope_id: str
    received_at: datetime
    replayed: bool = Field(default=False, description="Came from the replay topic.")
    test: bool = Field(default=False, description="A test webhook sent from the console.")
    event_time: datetime | None = Field(
        default=None, description="When the status changed; received_at when None."
    )
    event_time_source: EventTimeSource = "received"
    origin: Origin = "webhook"

    @property
    def changed_at(self) -> datetime:
        return self.event_time or self.received_at


class InvalidRecord(BaseModel):
    """A raw message that could not become a record change, parked with its reasons."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    reasons: list[str] = Field(min_length=1)
    envelope: RawEnvelope | None = Field(
        default=None, description="The envelope, when the message could be decoded."
    )
    raw_value: str | None = Field(
        default=None, description="The undecodable message, when it could not."
    )
    topic: str
    partition: int
    offset: int
    rejected_at: datetime
