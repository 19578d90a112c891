"""Prometheus counters of the worker."""

from prometheus_client import Counter

webhooks = Counter(
    "worker_webhooks", "Webhooks processed, by source and outcome.", ["source", "outcome"]
)
unusable_identifiers = Counter(
    "worker_unusable_identifiers",
    "Identifier fields present but impossible to normalise, so left out.",
    ["source", "field"],
)
validation_failures = Counter(
    "worker_validation_failures",
    "Reasons webhooks were parked as invalid, by source and kind of reason.",
    ["source", "reason"],
)
status_changes = Counter(
    "worker_status_changes", "Webhooks that moved their record to another status.", ["source"]
)
conversions_by_event = Counter(
    "worker_conversions_by_event",
    "Conversion events emitted, by source and event name.",
    ["source", "event"],
)
cdp_posts = Counter(
    "worker_cdp_posts",
    "Batches posted to the CDP, by what the answer meant (delivered, retry, split, reject).",
    ["outcome"],
)
cdp_delivered = Counter(
    "worker_cdp_delivered", "Conversions the CDP accepted, by source.", ["source"]
)
cdp_rejected = Counter("worker_cdp_rejected", "Conversions the CDP rejected for good.")
conversions = Counter(
    "worker_conversions",
    "Conversions emitted, by source and the origin of the envelope that made them "
    "(webhook, sweep, backfill).",
    ["source", "origin"],
)
sweep_only_conversions = Counter(
    "worker_sweep_only_conversions",
    "Conversions only the sweep found: their webhook never arrived (or came later).",
    ["source"],
)
late_conversions = Counter(
    "worker_late_conversions",
    "Conversions emitted with late=true: event_time older than LATE_CONVERSION_DAYS.",
    ["source"],
)
zoho_calls = Counter(
    "worker_zoho_api_calls", "Zoho CRM API calls, retries included, by kind.", ["source", "call"]
)
sweep_runs = Counter(
    "worker_sweep_runs",
    "Sweeps of a source, by outcome (complete, budget_spent, failed).",
    ["source", "outcome"],
)
sweep_records = Counter(
    "worker_sweep_records", "Records the sweep read from the CRM API.", ["source", "module"]
)
sweep_envelopes = Counter(
    "worker_sweep_envelopes",
    "Envelopes the sweep published to zoho.webhooks.raw, by kind (record, timeline).",
    ["source", "module", "kind"],
)
