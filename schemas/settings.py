"""Process settings, read from the environment once at start-up and passed in."""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = {"changeme", "change-me", "secret", "token", "xxx"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_cafile: Path | None = None
    topic_prefix: str = ""
    topic_partitions: int = Field(default=3, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)

    sources_file: Path | None = Field(
        default=None,
        description="A YAML file of sources the ingress imports at start; sources already "
        "in the sources topic win.",
    )
    sources_encryption_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated Fernet keys: the first encrypts new writes, all decrypt.",
    )
    admin_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token of the admin API; unset turns the admin API off.",
    )
    admin_url: str = Field(
        default="http://127.0.0.1:8080/admin",
        description="Where `zoho-cdp-sources` finds the admin API.",
    )
    api_key_overlap_s: float = Field(
        default=24 * 3600.0,
        ge=0,
        description="How long a rotated-out api key keeps working.",
    )
    sources_catch_up_timeout_s: float = Field(default=30.0, gt=0)

    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    produce_timeout_s: float = Field(default=10.0, gt=0)
    # A slow or absent client cannot hold a connection: the body must arrive within this,
    # and a connection that sends no request is closed after the keep-alive timeout.
    ingress_body_timeout_s: float = Field(default=10.0, gt=0)
    ingress_keepalive_timeout_s: float = Field(default=75.0, gt=0)
    ingress_spool_dir: Path = Field(
        default=Path("var/ingress-spool"),
        description="Each ingress replica needs a persistent directory of its own.",
    )
    ingress_spool_timeout_s: float = Field(
        default=2.0, gt=0, description="Kafka's acknowledgement is awaited this long, then spooled."
    )
    ingress_spool_max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # Concurrent webhooks' records share a produce request if they come within this
    # long. Without it they still share one while the previous request is in flight
    # (aiokafka sends one at a time), so a wait only adds latency here.
    ingress_producer_linger_ms: int = Field(default=0, ge=0)

    app_id: str = "zoho-cdp-conversions"
    worker_data_dir: Path = Path("var/worker")
    # How soon a crashed worker's partitions move to another: Kafka waits this long.
    worker_session_timeout_s: float = Field(default=30.0, ge=6)
    # Confirmed events waiting this long above one never confirmed make the worker read
    # that partition again from its committed offset (duplicates, never a loss).
    worker_hole_reread_s: float = Field(default=10.0, gt=0)
    # The webhook agent takes up to this many webhooks at a time and confirms their sends
    # together; it waits at most worker_batch_wait_s for a batch to fill, which is its
    # share of the end-to-end latency at low rates.
    worker_batch_size: int = Field(default=500, ge=1)
    worker_batch_wait_s: float = Field(default=0.02, gt=0)
    # How long the worker's producer gathers records into one request: the table's
    # changelog writes and a batch's conversions go out in a few requests instead of one
    # each; a batch waits for its sends once, so this adds to each batch, not each send.
    worker_producer_linger_ms: float = Field(default=5.0, ge=0)
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9101, ge=0, description="0 turns it off.")
    # Where the record-state table lives: RocksDB under worker_data_dir survives a restart
    # without reading the changelog again; memory is rebuilt from the changelog each start.
    worker_store: Literal["rocksdb", "memory"] = "rocksdb"
    worker_store_cache_mib: int = Field(
        default=32, ge=1, description="RocksDB block cache per table partition."
    )
    state_retention_days: float = Field(
        default=400.0,
        gt=0,
        description="A record no webhook touched for this long loses its state: a later "
        "webhook for it is treated as the record's first.",
    )
    state_sweep_interval_s: float = Field(default=3600.0, gt=0)

    cdp_url: str = "http://127.0.0.1:8090/events"
    cdp_token: SecretStr = SecretStr("")
    cdp_batch_size: int = Field(default=100, ge=1)
    # The longest a conversion waits for its batch to fill: the sink's share of the
    # end-to-end latency at low rates, against more, smaller requests to the CDP.
    cdp_batch_wait_s: float = Field(default=0.05, gt=0)
    cdp_timeout_s: float = Field(default=10.0, gt=0)
    cdp_max_backoff_s: float = Field(default=60.0, gt=0)

    zoho_timeout_s: float = Field(default=10.0, gt=0)
    zoho_max_attempts: int = Field(
        default=5, ge=1, description="Tries per Zoho call before a webhook is parked."
    )
    zoho_max_backoff_s: float = Field(default=60.0, gt=0)

    zoho_sweep_enabled: bool = Field(
        default=True, description="False turns the sweep off for every source."
    )
    # Seconds, so tests can sweep every second or two.
    zoho_sweep_interval_s: float = Field(default=15 * 60, ge=1)
    zoho_sweep_overlap_s: float = Field(
        default=5 * 60, ge=0, description="Each sweep re-reads this much before its mark."
    )
    zoho_sweep_first_lookback_s: float = Field(
        default=24 * 60 * 60,
        gt=0,
        description="How far back a source's first sweep reads; older is the backfill's.",
    )
    zoho_sweep_max_calls: int = Field(
        default=100, ge=1, description="Zoho CRM API calls per source and sweep, at most."
    )
    late_conversion_days: float = Field(
        default=7.0,
        gt=0,
        description="A conversion whose event_time is older than this is flagged late.",
    )
    console_recent_per_source: int = Field(
        default=200,
        ge=1,
        description="Webhooks, conversions, invalid records and dead "
        "letters the console keeps per source.",
    )
    console_trace_records: int = Field(
        default=100_000,
        ge=1,
        description="Records the console can trace, the oldest forgotten first: about 1 KB "
        "of memory per message kept.",
    )
    console_session_hours: float = Field(default=8.0, gt=0)

    log_level: str = "INFO"
    # The worker's and the ingress's event loop: uvloop (cheaper per message), or the
    # standard library's.
    event_loop: Literal["asyncio", "uvloop"] = "uvloop"

    @field_validator("cdp_token", "kafka_sasl_password", "admin_token")
    @classmethod
    def _no_placeholder(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError("is a placeholder: set a real secret")
        return value

    @field_validator("admin_token")
    @classmethod
    def _long_admin_token(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    def topic(self, name: str) -> str:
        """The topic's full name, with this deployment's prefix."""
        return f"{self.topic_prefix}{name}"

    def aiokafka_security(self) -> dict[str, Any]:
        """Security keyword arguments for aiokafka clients."""
        options: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            options |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_sasl_username,
                "sasl_plain_password": self.kafka_sasl_password.get_secret_value(),
            }
        if self.kafka_security_protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            cafile = str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
            options["ssl_context"] = create_ssl_context(cafile=cafile)
        return options
