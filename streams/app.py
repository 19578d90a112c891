"""The Faust app. It must exist at import time for the agent decorators, so it is built
here from the settings; nothing else in streams/ reads the environment."""

import faust
from faust.types.auth import CredentialsT
from faust.types.transports import TransportT

from schemas.settings import Settings
from sources.registry import SourceRegistry
from streams.transport import Transport

settings = Settings()
# Filled from the sources topic when the worker starts (streams/follow_sources.py), then live.
sources = SourceRegistry(settings)


def _credentials(settings: Settings) -> CredentialsT | None:
    if settings.kafka_security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=settings.aiokafka_security().get("ssl_context"),
        )
    if settings.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(settings.aiokafka_security()["ssl_context"])
    return None


class App(faust.App):
    def _new_transport(self) -> TransportT:
        return Transport(
            self.conf.broker_consumer, self, hole_reread_s=settings.worker_hole_reread_s
        )


app = App(
    settings.app_id,
    broker=[f"kafka://{host}" for host in settings.kafka_bootstrap_servers.split(",")],
    broker_credentials=_credentials(settings),
    datadir=str(settings.worker_data_dir),
    store=f"{settings.worker_store}://",
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.topic_replication_factor,
    producer_acks=-1,
    producer_linger=settings.worker_producer_linger_ms / 1000,
    broker_session_timeout=settings.worker_session_timeout_s,
    web_enabled=False,
    autodiscover=False,
    logging_config={
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "schemas.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": settings.log_level.upper()},
    },
)
