"""The raw webhook as the ingress accepted it: what zoho.webhooks.raw and .replay carry."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RawEnvelope(BaseModel):
    """One accepted webhook request, with its parameters kept as the strings Zoho sent."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    envelope_id: str = Field(description="Unique id the ingress gave this request.")
    source_id: str
    received_at: datetime = Field(description="When the ingress accepted the request (UTC).")
    method: str = "POST"
    content_type: str = ""
    parameters: dict[str, str] = Field(
        description="Query string and body merged (body wins), names as Zoho sent them."
    )
    replayed_at: datetime | None = Field(
        default=None, description="Set when the replay command re-published this envelope."
    )


def record_key(source_id: str, record_id: str) -> bytes:
    """Kafka key for raw and replay topics: one record always lands in one partition."""
    return f"{source_id}:{record_id}".encode()
