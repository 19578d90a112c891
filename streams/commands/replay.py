"""`zoho-cdp-replay`: re-publish accepted webhooks to zoho.webhooks.replay, where the worker
processes them again with the current sources file.

Reads zoho.webhooks.raw (or, with --only-invalid, the envelopes parked in
zoho.webhooks.invalid) up to the end offsets seen at start, keeps what the source, time
and offset filters select, and sends each envelope with `replayed_at` set, its original
key and its original partition. A record's conversion that was already emitted is not
emitted again, so running the same replay twice is safe.

The worker need not be running: it reads the replay topic from the group's committed
offset, or from the start of a partition it never committed (its commit guard), so a
replay written before a worker joins, or while one does, is read all the same.
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError
from tqdm import tqdm

from schemas import topics
from schemas.envelope import RawEnvelope, source_of_key
from schemas.records import InvalidRecord
from schemas.settings import Settings
from streams.commands.replay_plan import (
    BadSelection,
    Selection,
    Tally,
    parse_offsets,
    parse_time,
    replayed,
    scan_range,
    summary_text,
)
from streams.commands.start import start_command
from streams.kafka_admin import admin_client

# A message's Kafka timestamp is set when it is produced, a little after the envelope's
# received_at (or by the broker, whose clock may differ): the time index only narrows
# the scan, with this much room; the envelope's own time decides.
TIME_INDEX_MARGIN = timedelta(minutes=15)
FETCH_TIMEOUT_MS = 1000
IDLE_LIMIT_S = 60.0


@dataclass(frozen=True)
class ReplayRequest:
    selection: Selection
    from_offsets: Mapping[int | None, int]
    to_offsets: Mapping[int | None, int]
    only_invalid: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class Candidate:
    """One message read: the envelope to replay (None when it has none), where it goes."""

    envelope: RawEnvelope | None
    source_id: str | None
    at: datetime | None
    key: bytes | None
    partition: int


class ReplayFailed(RuntimeError):
    def __init__(self, message: str, tally: Tally) -> None:
        super().__init__(message)
        self.tally = tally


class Progress:
    """tqdm's bar (rate and time left), redrawn in place on a terminal and every few
    seconds otherwise; `update` takes the count done so far."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.bar = tqdm(
            total=total,
            file=stream,
            unit="msg",
            unit_scale=True,
            desc="replay",
            mininterval=0.1 if stream.isatty() else 5.0,
        )

    def update(self, done: int, final: bool = False) -> None:
        self.bar.update(done - self.bar.n)
        if final:
            self.bar.close()


def candidate(record: ConsumerRecord[bytes, bytes], only_invalid: bool) -> Candidate:
    """What a raw message (or a parked invalid record) offers for replay."""
    kafka_time = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    key_source = source_of_key(record.key)
    if not only_invalid:
        try:
            envelope = RawEnvelope.model_validate_json(record.value or b"")
        except ValidationError:
            return Candidate(None, key_source, kafka_time, record.key, record.partition)
        return Candidate(
            envelope, envelope.source_id, envelope.received_at, record.key, record.partition
        )
    try:
        parked = InvalidRecord.model_validate_json(record.value or b"")
    except ValidationError:
        return Candidate(None, key_source, kafka_time, record.key, record.partition)
    if parked.envelope is None:
        return Candidate(None, key_source, parked.rejected_at, record.key, parked.partition)
    envelope = parked.envelope
    # The parked record's key is the failed message's key; its partition is recorded.
    return Candidate(
        envelope, envelope.source_id, envelope.received_at, record.key, parked.partition
    )


async def replay(
    settings: Settings, request: ReplayRequest, progress_to: TextIO | None = None
) -> tuple[Tally, int]:
    """Runs the replay; returns what it did and how many partitions it read."""
    source_topic = settings.topic(topics.INVALID if request.only_invalid else topics.RAW)
    target_topic = settings.topic(topics.REPLAY)
    tally = Tally()
    consumer: AIOKafkaConsumer | None = None
    producer: AIOKafkaProducer | None = None
    try:
        raw_topic = settings.topic(topics.RAW)
        counts = await _partition_counts(settings, {source_topic, target_topic, raw_topic})
        _check_topics(counts, source_topic, raw_topic, target_topic)
        reader = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="zoho-cdp-replay",
            **settings.aiokafka_security(),
        )
        await reader.start()
        consumer = reader
        ranges = await _scan_ranges(consumer, source_topic, counts[source_topic], request)
        if not request.dry_run:
            writer = AIOKafkaProducer(
                bootstrap_servers=settings.kafka_bootstrap_servers,
                client_id="zoho-cdp-replay",
                acks="all",
                enable_idempotence=True,
                # Envelopes are small: bigger batches more than double the rate.
                linger_ms=5,
                max_batch_size=256 * 1024,
                **settings.aiokafka_security(),
            )
            await writer.start()
            producer = writer
        copier = _Copier(
            consumer, producer, request, target_topic, counts[target_topic], tally, set()
        )
        progress = Progress(sum(len(r) for r in ranges.values()), progress_to or sys.stderr)
        await copier.copy(ranges, progress)
        return tally, len(ranges)
    except ReplayFailed:
        raise
    except Exception as error:
        raise ReplayFailed(repr(error), tally) from error
    finally:
        if producer is not None:
            await producer.stop()
        if consumer is not None:
            await consumer.stop()


async def _partition_counts(settings: Settings, names: set[str]) -> dict[str, int]:
    """Partitions per topic, for the topics that exist (without creating any)."""
    async with admin_client(settings) as admin:
        present = sorted(names & set(await admin.list_topics()))
        described = await admin.describe_topics(present) if present else []
    return {topic["topic"]: len(topic["partitions"]) for topic in described}


def _check_topics(
    counts: Mapping[str, int], source_topic: str, raw_topic: str, target_topic: str
) -> None:
    missing = sorted({source_topic, raw_topic, target_topic} - set(counts))
    if missing:
        raise ReplayFailed(
            f"Kafka topics {missing} do not exist: create them with `zoho-cdp-topics`", Tally()
        )
    if counts[raw_topic] != counts[target_topic]:
        # The worker keeps each record's state in the partition its webhooks arrive on.
        raise ReplayFailed(
            f"{target_topic!r} has {counts[target_topic]} partitions and {raw_topic!r} "
            f"{counts[raw_topic]}: they must match so a replayed webhook reaches the "
            "partition that holds its record's state",
            Tally(),
        )


async def _scan_ranges(
    consumer: AIOKafkaConsumer, source_topic: str, partition_count: int, request: ReplayRequest
) -> dict[TopicPartition, range]:
    partitions = [TopicPartition(source_topic, p) for p in range(partition_count)]
    consumer.assign(partitions)
    beginning = await consumer.beginning_offsets(partitions)
    end = await consumer.end_offsets(partitions)
    selection = request.selection
    starts = await _offsets_at(consumer, partitions, selection.since, -TIME_INDEX_MARGIN, end)
    # A parked record is written when the worker gets to it, which may be long after the
    # webhook arrived: only the raw topic's time index can bound the end of the scan.
    stops = (
        await _offsets_at(consumer, partitions, selection.until, TIME_INDEX_MARGIN, end)
        if not request.only_invalid
        else {}
    )
    return {
        tp: scan_range(
            tp.partition,
            beginning[tp],
            end[tp],
            request.from_offsets,
            request.to_offsets,
            starts.get(tp),
            stops.get(tp),
        )
        for tp in partitions
    }


async def _offsets_at(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    moment: datetime | None,
    margin: timedelta,
    end: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """The first offset at or after `moment + margin` in each partition (the end offset
    when there is none)."""
    if moment is None:
        return {}
    millis = max(0, int((moment + margin).timestamp() * 1000))
    found = await consumer.offsets_for_times({tp: millis for tp in partitions})
    return {tp: found[tp].offset if found.get(tp) else end[tp] for tp in partitions}


@dataclass
class _Copier:
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer | None  # None in a dry run
    request: ReplayRequest
    target_topic: str
    target_partitions: int
    tally: Tally
    seen: set[str]

    async def copy(self, ranges: Mapping[TopicPartition, range], progress: Progress) -> None:
        """Reads every range to its stop, confirming each batch's sends before the next."""
        pending = {tp: r for tp, r in ranges.items() if len(r)}
        for tp, offsets in pending.items():
            self.consumer.seek(tp, offsets.start)
        # Otherwise the consumer would prefetch partitions with nothing to replay.
        self.consumer.pause(*(tp for tp in ranges if tp not in pending))
        done = dict.fromkeys(ranges, 0)
        last_progress = time.monotonic()
        while pending:
            batches = await self.consumer.getmany(*pending, timeout_ms=FETCH_TIMEOUT_MS)
            sends: list[tuple[str, asyncio.Future[Any]]] = []
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ranges[tp].stop:
                        break
                    self.tally.scanned += 1
                    sends += await self._take(candidate(record, self.request.only_invalid))
            await self._confirm(sends)
            for tp in list(pending):
                position = await self.consumer.position(tp)
                moved = min(position, ranges[tp].stop) - ranges[tp].start
                if moved != done[tp]:
                    done[tp], last_progress = moved, time.monotonic()
                if position >= ranges[tp].stop:
                    self.consumer.pause(tp)
                    del pending[tp]
            if pending and time.monotonic() - last_progress > IDLE_LIMIT_S:
                raise ReplayFailed(
                    f"no progress for {IDLE_LIMIT_S:.0f} s reading {sorted(map(str, pending))}",
                    self.tally,
                )
            progress.update(sum(done.values()))
        progress.update(sum(done.values()), final=True)

    async def _take(self, offered: Candidate) -> list[tuple[str, asyncio.Future[Any]]]:
        """Counts the message and, when selected, sends its envelope (not in a dry run)."""
        if not self.request.selection.matches(offered.source_id, offered.at):
            self.tally.not_selected += 1
            return []
        envelope = offered.envelope
        if envelope is None:
            self.tally.undecodable += 1
            return []
        if self.request.only_invalid:
            # An envelope that failed again after a replay is parked again: take it once.
            if envelope.envelope_id in self.seen:
                self.tally.duplicates += 1
                return []
            self.seen.add(envelope.envelope_id)
        if self.producer is None:
            self._count(envelope.source_id)
            return []
        value = replayed(envelope, datetime.now(UTC)).model_dump_json().encode()
        partition = offered.partition if offered.partition < self.target_partitions else None
        sent = await self.producer.send(
            self.target_topic, value=value, key=offered.key, partition=partition
        )
        return [(envelope.source_id, sent)]

    async def _confirm(self, sends: list[tuple[str, asyncio.Future[Any]]]) -> None:
        try:
            await asyncio.gather(*(future for _, future in sends))
        except Exception as error:
            raise ReplayFailed(f"Kafka did not confirm a send: {error!r}", self.tally) from error
        for source_id, _ in sends:
            self._count(source_id)

    def _count(self, source_id: str) -> None:
        self.tally.replayed += 1
        self.tally.by_source[source_id] += 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zoho-cdp-replay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="SOURCE_ID",
        help="only this source's webhooks; repeatable",
    )
    parser.add_argument(
        "--since",
        metavar="TIME",
        help="webhooks received at or after: ISO 8601 (UTC unless it says) or back from "
        "now (30m, 2h, 7d)",
    )
    parser.add_argument("--until", metavar="TIME", help="exclusive; same forms as --since")
    parser.add_argument(
        "--from-offset",
        action="append",
        default=[],
        metavar="[PARTITION:]OFFSET",
        help="first offset to read, per partition or for all; repeatable. Naming only "
        "some partitions leaves the others unread",
    )
    parser.add_argument(
        "--to-offset",
        action="append",
        default=[],
        metavar="[PARTITION:]OFFSET",
        help="last offset to read (inclusive), per partition or for all; repeatable",
    )
    parser.add_argument(
        "--only-invalid",
        action="store_true",
        help="replay only the envelopes parked in zoho.webhooks.invalid (offsets are that topic's)",
    )
    parser.add_argument("--all", action="store_true", help="no filter: everything still retained")
    parser.add_argument("--dry-run", action="store_true", help="count, send nothing")
    return parser


def _request(arguments: argparse.Namespace, now: datetime) -> ReplayRequest:
    filtered = (
        arguments.source
        or arguments.since
        or arguments.until
        or arguments.from_offset
        or arguments.to_offset
        or arguments.only_invalid
    )
    if not (filtered or arguments.all):
        raise BadSelection("say what to replay (--source, --since, --until, offsets) or --all")
    return ReplayRequest(
        selection=Selection(
            sources=frozenset(arguments.source),
            since=parse_time(arguments.since, now) if arguments.since else None,
            until=parse_time(arguments.until, now) if arguments.until else None,
        ),
        from_offsets=parse_offsets(arguments.from_offset, "--from-offset"),
        to_offsets=parse_offsets(arguments.to_offset, "--to-offset"),
        only_invalid=arguments.only_invalid,
        dry_run=arguments.dry_run,
    )


def main(argv: list[str] | None = None) -> None:
    request, settings = start_command(_parser(), argv, _request)
    started = time.monotonic()
    failure = None
    try:
        tally, partitions = asyncio.run(replay(settings, request))
    except ReplayFailed as error:
        failure, tally, partitions = error, error.tally, 0
    if tally.scanned or failure is None:
        sys.stdout.write(
            summary_text(
                tally,
                source_topic=settings.topic(topics.INVALID if request.only_invalid else topics.RAW),
                target_topic=settings.topic(topics.REPLAY),
                partitions=partitions,
                seconds=time.monotonic() - started,
                dry_run=request.dry_run,
            )
        )
    if failure is not None:
        sys.exit(f"replay failed: {failure}. Running the same replay again is safe.")


if __name__ == "__main__":
    main()
