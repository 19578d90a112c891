"""`zoho-cdp-backfill`: read a source's records modified in a window from the Zoho CRM
API and publish them to zoho.webhooks.raw, as the sweep does, for conversions that were
never posted (a new source, a webhook set up late) or to re-send after a mapping fix.

The worker decides as for webhooks: a record and event already converted is not sent
again. Each page of 200 records is one API call, as is each webhook-failures page and
timeline page; `--max-calls` bounds them.
"""

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import aiohttp
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from schemas import topics
from schemas.envelope import RawEnvelope, record_key
from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.crypto import NoEncryptionKey
from sources.registry import MissingSourcesTopic, read_sources
from streams.clients.zoho_crm import ZohoCrmClient
from streams.commands.backfill_plan import BackfillTally, summary_text
from streams.commands.replay_plan import BadSelection, parse_time
from streams.commands.start import start_command
from streams.crm_reader import read_modified, recover_from_failures
from streams.decisions.sweep import Budget, can_call_crm
from zoho.crm_api import ZohoError
from zoho.fields import RECORD_ID_FIELDS, Module, module_of

DEFAULT_MAX_CALLS = 5000


@dataclass(frozen=True)
class BackfillRequest:
    source_id: str
    modules: tuple[Module, ...]
    since: datetime
    until: datetime | None
    dry_run: bool
    max_calls: int


class Progress:
    """tqdm's bar of records read (Zoho does not say how many there are up front)."""

    def __init__(self, stream: TextIO) -> None:
        self.bar = tqdm(
            file=stream,
            unit="rec",
            unit_scale=True,
            desc="backfill",
            mininterval=0.1 if stream.isatty() else 5.0,
        )
        self._before = 0

    def module_done(self, records: int) -> None:
        self._before += records

    def update(self, read_in_module: int) -> None:
        self.bar.update(self._before + read_in_module - self.bar.n)

    def close(self) -> None:
        self.bar.close()


async def backfill(
    settings: Settings,
    source: SourceConfig,
    request: BackfillRequest,
    *,
    stream: TextIO = sys.stderr,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackfillTally:
    tally = BackfillTally()
    producer = None
    if not request.dry_run:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            **settings.aiokafka_security(),
        )
        await producer.start()
    pending: list[asyncio.Future[Any]] = []
    topic = settings.topic(topics.RAW)

    async def send(envelope: RawEnvelope) -> None:
        tally.count(envelope, source)
        if producer is None:
            return
        module = module_of(envelope.parameters)
        key = record_key(envelope.source_id, envelope.parameters[RECORD_ID_FIELDS[module]])
        pending.append(await producer.send(topic, envelope.model_dump_json().encode(), key=key))
        if len(pending) >= 1000:
            await _confirm(pending)

    calls = [0]
    progress = Progress(stream)
    try:
        async with aiohttp.ClientSession() as session:
            client = ZohoCrmClient(
                session,
                source,
                timeout_s=settings.zoho_timeout_s,
                max_attempts=settings.zoho_max_attempts,
                max_backoff_s=settings.zoho_max_backoff_s,
                count_call=lambda _source, _kind: calls.__setitem__(0, calls[0] + 1),
            )
            try:
                budget = Budget(request.max_calls)
                until = request.until or now()
                for module in request.modules:
                    read = await read_modified(
                        client,
                        source,
                        module,
                        since=request.since,
                        until=request.until,
                        origin="backfill",
                        budget=budget,
                        send=send,
                        now=now,
                        on_page=progress.update,
                    )
                    if read.complete:
                        await recover_from_failures(
                            client,
                            source,
                            module,
                            since=request.since,
                            until=until,
                            origin="backfill",
                            budget=budget,
                            send=send,
                            now=now,
                            read=read,
                        )
                    progress.module_done(read.records)
                    tally.records += read.records
                    tally.without_cdp_id += read.without_cdp_id
                    tally.envelopes += read.envelopes
                    tally.recovered += read.recovered
                    if not read.complete:
                        raise BackfillStopped(
                            f"stopped after {budget.used} Zoho API calls (--max-calls); "
                            "run again with a higher limit or a shorter window",
                            tally,
                        )
            finally:
                await client.close()
        await _confirm(pending)
    finally:
        tally.calls = calls[0]
        progress.close()
        if producer is not None:
            await producer.stop()
    return tally


class BackfillStopped(RuntimeError):
    def __init__(self, message: str, tally: BackfillTally) -> None:
        super().__init__(message)
        self.tally = tally


async def _confirm(pending: list[asyncio.Future[Any]]) -> None:
    """Kafka has every envelope sent so far."""
    futures, pending[:] = list(pending), []
    await asyncio.gather(*futures)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoho-cdp-backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="the source's id")
    parser.add_argument("--module", choices=[m.value for m in Module], help="default: both")
    parser.add_argument(
        "--since", default="90d", help="ISO 8601 time or back from now (90d, 12h); default 90d"
    )
    parser.add_argument("--until", help="ISO 8601 time or back from now; exclusive; default now")
    parser.add_argument("--dry-run", action="store_true", help="count, send nothing")
    parser.add_argument(
        "--max-calls",
        type=int,
        default=DEFAULT_MAX_CALLS,
        help=f"Zoho API calls at most (default {DEFAULT_MAX_CALLS})",
    )
    return parser


def _request(arguments: argparse.Namespace, now: datetime) -> BackfillRequest:
    since = parse_time(arguments.since, now)
    until = parse_time(arguments.until, now) if arguments.until else None
    if until is not None and until <= since:
        raise BadSelection("--until must be later than --since")
    if arguments.max_calls < 1:
        raise BadSelection("--max-calls must be at least 1")
    modules = (Module(arguments.module),) if arguments.module else tuple(Module)
    return BackfillRequest(
        arguments.source, modules, since, until, arguments.dry_run, arguments.max_calls
    )


def main(argv: list[str] | None = None) -> None:
    request, settings = start_command(_parser(), argv, _request)
    try:
        sources = asyncio.run(read_sources(settings))
    except (NoEncryptionKey, MissingSourcesTopic) as error:
        sys.exit(str(error))
    source = sources.get(request.source_id)
    if source is None:
        sys.exit(f"no source {request.source_id!r}: `zoho-cdp-sources list` shows them")
    if not can_call_crm(source):
        sys.exit(
            f"source {source.id!r} has no client_id, client_secret and refresh_token: the "
            "backfill reads the Zoho CRM API with them"
        )
    failure: Exception | None = None
    try:
        tally = asyncio.run(backfill(settings, source, request))
    except BackfillStopped as error:
        failure, tally = error, error.tally
    except ZohoError as error:
        sys.exit(f"backfill failed: {error}. Running it again is safe.")
    sys.stdout.write(
        summary_text(
            tally, source_id=source.id, topic=settings.topic(topics.RAW), dry_run=request.dry_run
        )
    )
    if failure is not None:
        sys.exit(f"backfill incomplete: {failure}")


if __name__ == "__main__":
    main()
