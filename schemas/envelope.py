"""The raw webhook as the ingress accepted it: what zoho.webhooks.raw and .replay carry."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Who made the envelope: the ingress for a webhook Zoho posted, the worker's sweep or the
# backfill command for a record read from the CRM API.
Origin = Literal["webhook", "sweep", "backfill"]


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
    origin: Origin = Field(
        default="webhook",
        description="`webhook` (posted by Zoho), `sweep` or `backfill` (read from the CRM "
        "API, parameters under the webhook names).",
    )
    status_changed_at: datetime | None = Field(
        default=None,
        description="When the CRM's timeline says the record entered this status; set for "
        "a status the sweep recovered from the timeline.",
    )
    test: bool = Field(
        default=False,
        description="A test webhook sent from the console; its conversion carries test: true.",
    )


def record_key(source_id: str, record_id: str) -> bytes:
    """Kafka key for raw and replay topics: one record always lands in one partition."""
    return f"{source_id}:{record_id}".encode()


def source_of_key(key: bytes | None) -> str | None:
    """The source in a `{source_id}:{record_id}` key, for messages that are not envelopes."""
    if not key or b":" not in key:
        return None
    return key.split(b":", 1)[0].decode("utf-8", "replace")
