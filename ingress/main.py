"""`zoho-cdp-ingress`: serve the source URLs and the admin API."""

import argparse
import logging
import os
import sys

from aiohttp import web

from ingress.app import create_app
from ingress.kafka import MissingTopics
from ingress.spool import SpoolInUse
from schemas import runtime
from schemas.logs import configure_logging
from schemas.settings import Settings
from schemas.source import SourceConfig
from schemas.sources_file import SourcesFileError, load_sources
from sources.crypto import NoEncryptionKey, SecretBox
from sources.registry import MissingSourcesTopic


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--force",
        action="store_true",
        help="the sources file replaces sources of the same id in the sources topic",
    )
    arguments = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level)
    runtime.prepare(settings.event_loop)
    try:
        SecretBox.from_setting(settings.sources_encryption_keys)
    except NoEncryptionKey as error:
        sys.exit(str(error))
    seed: dict[str, SourceConfig] = {}
    if settings.sources_file is not None:
        try:
            seed = load_sources(settings.sources_file, dict(os.environ))
        except SourcesFileError as error:
            sys.exit(str(error))
    logging.getLogger(__name__).info(
        "ingress starting",
        extra={"seed": sorted(seed), "port": settings.ingress_port},
    )
    try:
        web.run_app(
            create_app(settings, seed=seed, force_seed=arguments.force),
            host=settings.ingress_host,
            port=settings.ingress_port,
            print=None,
            # The source URL carries the api key and the Zoho code: no access log.
            access_log=None,
            keepalive_timeout=settings.ingress_keepalive_timeout_s,
        )
    except (MissingTopics, MissingSourcesTopic, SpoolInUse) as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
