"""`zoho-cdp-worker`: run the Faust agents."""

import asyncio
import sys

import faust
from prometheus_client import start_http_server

from schemas import runtime
from schemas.logs import skip_unused_record_fields
from sources.crypto import NoEncryptionKey, SecretBox
from streams import (
    agents,  # noqa: F401 - registers the agents with the app
    expiry,  # noqa: F401 - registers the state expiry timer with the app
    follow_sources,  # noqa: F401 - starts the sources follower with the app
    sweep,  # noqa: F401 - registers the sweep with the app
)
from streams.app import app, settings
from streams.commands.topics import missing_topics


def main() -> None:
    runtime.prepare(settings.event_loop)
    # Faust configures the worker's logging (streams.app), not configure_logging.
    skip_unused_record_fields()
    try:
        SecretBox.from_setting(settings.sources_encryption_keys)
    except NoEncryptionKey as error:
        sys.exit(str(error))
    missing = asyncio.run(missing_topics(settings))
    if missing:
        sys.exit(f"Kafka topics {missing} do not exist: create them with `zoho-cdp-topics`")
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    worker = faust.Worker(app, loglevel=settings.log_level.lower())
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
