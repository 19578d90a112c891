"""The Faust table of record states, kept in the worker's store and its changelog topic."""

from streams.app import app, settings

# Last status and emitted events per record; keyed like the webhook topics, so each
# record's state lives in the partition its webhooks arrive on.
record_states = app.Table(
    "record-states",
    default=None,
    partitions=settings.topic_partitions,
    # No key or value type: Faust then stores plain JSON and recovers it as such.
)
