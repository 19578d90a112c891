"""How the replay and the backfill start: a request from the arguments (a usage error
when they cannot make one), the settings, and logging that leaves the progress bar
whole."""

import argparse
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from schemas.logs import configure_logging
from schemas.settings import Settings
from streams.commands.replay_plan import BadSelection

Request = TypeVar("Request")


def start_command(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    request_of: Callable[[argparse.Namespace, datetime], Request],
) -> tuple[Request, Settings]:
    arguments = parser.parse_args(argv)
    try:
        request = request_of(arguments, datetime.now(UTC))
    except BadSelection as error:
        parser.error(str(error))
    settings = Settings()
    configure_logging(settings.log_level)
    # aiokafka's INFO lines would break up the progress bar; warnings still show.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    return request, settings
