"""Topic names are a contract: downstream teams subscribe to them by name."""

from dataclasses import dataclass

RAW = "zoho.webhooks.raw"
REPLAY = "zoho.webhooks.replay"
INVALID = "zoho.webhooks.invalid"
CONVERSIONS = "cdp.conversions"
CONVERSIONS_DEADLETTER = "cdp.conversions.deadletter"
CONVERSIONS_DELIVERED = "cdp.conversions.delivered"
# The sweep's high-water mark per source and module: compacted, one partition, read
# whole by whichever worker leads the sweep.
SWEEP_MARKS = "zoho.sweep.marks"
# The sources, keyed by source id, compacted: the latest version of each is kept for good.
SOURCES = "cdp.sources"

DAY_MS = 24 * 60 * 60 * 1000

# Key of the empty messages earlier replay commands wrote so a partition had a committed
# offset before they replayed into it. None are written any more (the worker's commit
# guard reads a partition it never committed from its start), but the replay topic keeps
# old ones for its retention, so consumers still skip them.
PARTITION_MARKER_KEY = b"zoho-cdp:partition-marker"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    retention_days: int
    purpose: str


TOPICS = (
    TopicSpec(RAW, 30, "every accepted webhook, as received"),
    TopicSpec(REPLAY, 30, "raw envelopes re-published for reprocessing"),
    TopicSpec(INVALID, 30, "webhooks that failed validation, with reasons"),
    TopicSpec(CONVERSIONS, 7, "conversion events for the CDP and downstream teams"),
    TopicSpec(CONVERSIONS_DEADLETTER, 30, "conversions the CDP rejected, with its answer"),
    TopicSpec(CONVERSIONS_DELIVERED, 7, "receipts of conversions the CDP accepted"),
)
