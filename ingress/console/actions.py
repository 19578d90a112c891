"""What the console's action buttons do: a test webhook through the real path, and
replays through the replay command's code with a dry-run count first."""

import asyncio
import contextlib
import io
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schemas.envelope import RawEnvelope
from schemas.settings import Settings
from schemas.source import SourceConfig
from streams.commands.replay import ReplayFailed, ReplayRequest, replay
from streams.commands.replay_plan import Selection, Tally
from streams.decisions.status import DEFAULT_STATUS_MAP, event_for_status
from zoho.fields import CDP_ID_FIELD, MODIFIED_BY_FIELD, RECORD_ID_FIELDS, STATUS_FIELDS, Module

TEST_PREFIX = "console-test-"


def converting_status(source: SourceConfig) -> str | None:
    """A Leads status that converts for this source, so a test webhook emits an event."""
    candidates = [*source.status_map.get(Module.LEADS, {}), *DEFAULT_STATUS_MAP[Module.LEADS]]
    for status in candidates:
        if event_for_status(Module.LEADS, status, source.status_map):
            return status
    return None


def console_test_envelope(source: SourceConfig, now: datetime) -> RawEnvelope:
    """A Lead of its own (so it converts once and touches no real record), marked test."""
    status = converting_status(source)
    if status is None:
        raise ValueError("no Leads status of this source maps to an event")
    marker = f"{TEST_PREFIX}{uuid.uuid4().hex[:12]}"
    return RawEnvelope(
        envelope_id=uuid.uuid4().hex,
        source_id=source.id,
        received_at=now,
        method="POST",
        content_type="application/x-www-form-urlencoded",
        parameters={
            RECORD_ID_FIELDS[Module.LEADS]: marker,
            CDP_ID_FIELD: marker,
            STATUS_FIELDS[Module.LEADS]: status,
            source.amount_field: "1",
            MODIFIED_BY_FIELD: "operator console",
            "email": "console-test@example.com",
        },
        test=True,
    )


@dataclass
class ReplayJob:
    source_id: str
    only_invalid: bool
    since: datetime | None
    until: datetime | None
    dry_run: bool
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tally: Tally | None = None
    error: str | None = None
    done: bool = False

    @property
    def what(self) -> str:
        return self.what_for(2)

    def what_for(self, count: int) -> str:
        """What is replayed, said of `count` of them."""
        one = count == 1
        if self.only_invalid:
            return "invalid record" if one else "invalid records"
        since = self.since.isoformat(timespec="seconds") if self.since else "the start"
        until = self.until.isoformat(timespec="seconds") if self.until else "now"
        return f"{'webhook' if one else 'webhooks'} from {since} to {until}"

    def request(self) -> ReplayRequest:
        return ReplayRequest(
            selection=Selection(frozenset({self.source_id}), self.since, self.until),
            from_offsets={},
            to_offsets={},
            only_invalid=self.only_invalid,
            dry_run=self.dry_run,
        )


async def run_replay(settings: Settings, job: ReplayJob) -> ReplayJob:
    try:
        job.tally, _ = await replay(settings, job.request(), progress_to=io.StringIO())
    except ReplayFailed as failed:
        job.tally, job.error = failed.tally, str(failed)
    finally:
        job.done = True
    return job


class Jobs:
    """The replays started from the console, one running per source at a time."""

    def __init__(self) -> None:
        self.last: dict[str, ReplayJob] = {}
        self._tasks: set[asyncio.Task[ReplayJob]] = set()

    def running(self, source_id: str) -> bool:
        job = self.last.get(source_id)
        return job is not None and not job.done and not job.dry_run

    def start(self, settings: Settings, job: ReplayJob) -> None:
        self.last[job.source_id] = job
        task = asyncio.create_task(run_replay(settings, job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
