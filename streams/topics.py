"""The Faust topics and table. Values stay raw bytes: agents decode them, so a poison
message is parked with a reason instead of being skipped by Faust's deserializer."""

from schemas import topics
from streams.app import app, settings

webhooks = app.topic(
    settings.topic(topics.RAW),
    settings.topic(topics.REPLAY),
    key_serializer="raw",
    value_serializer="raw",
)
invalid = app.topic(settings.topic(topics.INVALID), key_serializer="raw", value_serializer="raw")
conversions = app.topic(
    settings.topic(topics.CONVERSIONS), key_serializer="raw", value_serializer="raw"
)
conversions_delivered = app.topic(
    settings.topic(topics.CONVERSIONS_DELIVERED), key_serializer="raw", value_serializer="raw"
)
conversions_deadletter = app.topic(
    settings.topic(topics.CONVERSIONS_DEADLETTER), key_serializer="raw", value_serializer="raw"
)
# The raw topic alone: where the sweep publishes the envelopes it reads from the CRM.
raw = app.topic(settings.topic(topics.RAW), key_serializer="raw", value_serializer="raw")
sweep_marks = app.topic(
    settings.topic(topics.SWEEP_MARKS), key_serializer="raw", value_serializer="raw"
)
