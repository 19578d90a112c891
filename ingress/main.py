"""`zoho-cdp-ingress`: serve the source URLs."""

import logging
import os
import sys

from aiohttp import web

from ingress.app import create_app
from ingress.kafka import MissingTopics
from schemas.logs import configure_logging
from schemas.settings import Settings
from schemas.sources_file import SourcesFileError, load_sources


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    try:
        sources = load_sources(settings.sources_file, dict(os.environ))
    except SourcesFileError as error:
        sys.exit(str(error))
    logging.getLogger(__name__).info(
        "ingress starting",
        extra={"sources": sorted(sources), "port": settings.ingress_port},
    )
    try:
        web.run_app(
            create_app(settings, sources),
            host=settings.ingress_host,
            port=settings.ingress_port,
            print=None,
            # The source URL carries the api key and the Zoho code: no access log.
            access_log=None,
        )
    except MissingTopics as error:
        sys.exit(str(error))


if __name__ == "__main__":
    main()
