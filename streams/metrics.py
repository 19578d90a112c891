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
cdp_posts = Counter("worker_cdp_posts", "Batches posted to the CDP, by outcome.", ["outcome"])
cdp_rejected = Counter("worker_cdp_rejected", "Conversions the CDP rejected for good.")
