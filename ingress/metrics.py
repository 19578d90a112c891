"""Prometheus metrics for the ingress, in a registry of the app's own."""

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class IngressMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "ingress_requests",
            "Webhook requests by source and HTTP status.",
            ["source", "status"],
            registry=self.registry,
        )
        self.produce_seconds = Histogram(
            "ingress_produce_seconds",
            "Time from produce to Kafka's acknowledgement.",
            registry=self.registry,
        )
