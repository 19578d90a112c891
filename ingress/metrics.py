"""Prometheus metrics for the ingress, in a registry of the app's own."""

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class IngressMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self._request_counters: dict[tuple[str, int], Counter] = {}
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
        self.spooled = Counter(
            "ingress_spooled",
            "Webhooks written to the local spool because Kafka was slow, down or behind it.",
            registry=self.registry,
        )
        self.drained = Counter(
            "ingress_spool_drained",
            "Spooled webhooks Kafka has acknowledged since the start.",
            registry=self.registry,
        )
        self.spool_depth = Gauge(
            "ingress_spool_depth", "Webhooks in the local spool.", registry=self.registry
        )
        self.spool_bytes = Gauge(
            "ingress_spool_bytes", "Bytes of webhooks in the local spool.", registry=self.registry
        )
        self.spool_oldest_age = Gauge(
            "ingress_spool_oldest_age_seconds",
            "How long the oldest spooled webhook has waited for Kafka (0 when empty).",
            registry=self.registry,
        )

    def count_request(self, source: str, status: int) -> None:
        """One webhook request more. The labelled counter is kept: looking it up by its
        labels costs more than the count."""
        counter = self._request_counters.get((source, status))
        if counter is None:
            counter = self.requests.labels(source, str(status))
            self._request_counters[source, status] = counter
        counter.inc()
