"""A Faust transport whose consumer commits only what the agents confirmed.

Faust 0.15 acks an event in a `finally` (also when the agent raised or was cancelled)
and commits up to the first gap in its acks, and around a rebalance it turns events it
fetched but never delivered into "gaps" that it commits past (../shared/FAUST-NOTES.md,
"Rebalances"). Seeking harder only makes that rarer. This consumer replaces the commit
rule for the agents' source partitions instead (streams/decisions/commits.py):

- an agent calls `confirmed(event)` once the event's side effects are confirmed (the
  conversion sent and acknowledged by Kafka, the table written; the sink's batch at the
  CDP or in the dead-letter topic). Faust's own ack no longer counts for commits.
- on assignment each partition's base is read from the broker: the group's committed
  offset, or the earliest offset for a partition never committed. The partition is
  sought there, and Faust's read-offset and gap bookkeeping is off for it, so nothing
  fetched twice is dropped and nothing skipped is assumed done.
- a commit moves a partition only to the end of the run of confirmed offsets starting
  at its base; the base moves only when Kafka accepted the commit. Faust's own ack
  bookkeeping for these partitions (its compiled stream iterator writes `_acked`
  directly) is discarded, never committed.
- confirmations waiting above a hole for `hole_reread_s`, or a partition fetched past its
  unconfirmed base while no event is in flight, make the partition read again from its
  base: a duplicate (same event_id, absorbed downstream), never a loss.
- revoked partitions keep their state until the app has waited for the events in flight
  and committed what they confirmed; then it is dropped, and re-read from the broker
  when they come back.

Why a Faust consumer and not a plain aiokafka loop: the agents keep Faust's table with
its changelog and recovery, the Faust test tools and the supervisor, and the change is
one transport plus one call per agent. The cost is that every agent reading through this
transport must call `confirmed`, or its partitions never commit (lag, not loss), and
agents must keep `concurrency=1` so one partition's events finish in order.
"""

import asyncio
from collections import defaultdict
from time import monotonic
from typing import Any

from faust.exceptions import ImproperlyConfigured, ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT, Message
from faust.types.transports import TPorTopicSet
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.decisions.commits import CommitRule

DEFAULT_HOLE_REREAD_S = 10.0


def confirmed(*events: EventT[Any]) -> None:
    """The events' side effects are confirmed: their offsets may now be committed."""
    for event in events:
        consumer = event.app.consumer
        if isinstance(consumer, Consumer):
            consumer.confirm(event.message)


class _ReadOffsets(defaultdict[TP, int | None]):
    """Faust's read offsets, kept only for partitions outside the commit rule: Faust
    drops records below the read offset and records a jump past it as a gap to commit
    over, neither of which may happen on a guarded partition."""

    def __init__(self, consumer: "Consumer") -> None:
        super().__init__(lambda: None)
        self._consumer = consumer

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        if not self._consumer.guarded(tp):
            super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for tp, offset in dict(*args, **kwargs).items():
            self[tp] = offset


class Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.in_transaction:
            raise ImproperlyConfigured("the commit guard supports at-least-once only")
        hole_reread_s = getattr(self.transport, "hole_reread_s", DEFAULT_HOLE_REREAD_S)
        self.commits: CommitRule[TP] = CommitRule(hole_reread_s)
        self._read_offset = _ReadOffsets(self)

    def guarded(self, tp: TP) -> bool:
        return not self._is_changelog_tp(tp) and self.app.topics.acks_enabled_for(tp.topic)

    def confirm(self, message: Message) -> None:
        self.commits.confirm(message.tp, message.offset)
        self._n_acked += 1

    def ack(self, message: Message) -> bool:
        if not self.guarded(message.tp):
            return super().ack(message)
        # Faust's ack only ends the wait for the event (shutdown, rebalance); it also
        # comes for an event that failed or was abandoned, so it commits nothing.
        with ack_lock:
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
        notify(self._waiting_for_ack)
        return True

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        for tp in self.commits.tracked():
            if tp not in assigned:
                self.commits.revoke(tp)
        for tp in assigned:
            if self.guarded(tp):
                self.commits.assign(tp)
        await super().on_partitions_assigned(assigned, generation_id)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        try:
            # The app waits here for the events in flight and commits what they
            # confirmed, so the bookkeeping of these partitions goes only afterwards.
            await super().on_partitions_revoked(revoked)
        finally:
            for tp in revoked:
                self.commits.revoke(tp)

    async def perform_seek(self) -> None:
        committed = await self.seek_to_committed()
        unguarded = {tp: offset for tp, offset in committed.items() if not self.guarded(tp)}
        self._read_offset.update(
            {
                tp: offset if offset is not None and offset >= 0 else None
                for tp, offset in unguarded.items()
            }
        )
        self._committed_offset.update(
            {tp: offset or None for tp, offset in unguarded.items() if offset is not None}
        )
        tracked = set(self.commits.tracked())
        guarded = {tp: offset for tp, offset in committed.items() if tp in tracked}
        if not guarded:
            return
        earliest = await self.earliest_offsets(
            *(faust_aiokafka.ensure_aiokafka_TP(tp) for tp in guarded)
        )
        bases = {
            tp: self.commits.start_at(tp, offset, earliest.get(tp, 0))
            for tp, offset in guarded.items()
        }
        self.log.info("Reading guarded partitions from their committed offsets: %r", bases)
        await self.seek_wait(bases)

    async def force_commit(
        self,
        topics: TPorTopicSet | None = None,
        start_new_transaction: bool = True,  # noqa: ARG002 - Faust's signature; no transactions
    ) -> bool:
        sensor_state = self.app.sensors.on_commit_initiated(self)
        did_commit = await self._commit_confirmed(topics)
        self.app.sensors.on_commit_completed(self, sensor_state)
        await self._read_holes_again()
        return did_commit

    async def _commit_confirmed(self, topics: TPorTopicSet | None) -> bool:
        assignment = self.assignment()
        offsets = {
            tp: offset
            for tp, offset in self.commits.committable().items()
            if tp in assignment and (topics is None or tp in topics or tp.topic in topics)
        }
        # Faust's compiled stream iterator records its acks in `_acked` itself, without
        # going through `ack`: for guarded partitions they are dropped, never committed.
        for tp in [tp for tp in self._acked if self.guarded(tp)]:
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
        # Partitions outside the rule (none of the agents' own) keep Faust's.
        offsets |= self._filter_committable_offsets(self._filter_tps_with_pending_acks(topics))
        if not offsets:
            return False
        try:
            await self._handle_attached(offsets)
        except ProducerSendError as error:
            await self.crash(error)
            return False
        # The table's changelog records go out before the offsets that cover them.
        await self.app.producer.flush()
        if not await self._commit(offsets):
            return False
        for tp, offset in offsets.items():
            self.commits.committed(tp, offset)
        self._committed_offset.update(offsets)
        self.app.tables.on_commit(offsets)
        self.app.monitor.on_tp_commit(offsets)
        return True

    async def _read_holes_again(self) -> None:
        assignment = self.assignment()
        busy = any(not message.acked for message in list(self._unacked_messages))
        # Where each partition's fetching has got to matters only while nothing is in
        # flight: then an unconfirmed base below it was dropped on its way to the agent.
        positions = {} if busy else await self._positions(self.commits.tracked())
        due = {
            tp: base
            for tp, base in self.commits.seeks_due(monotonic(), positions, busy).items()
            if tp in assignment
        }
        if not due:
            return
        self.log.warning("Events fetched were never confirmed; reading again from %r", due)
        try:
            await self.seek_wait(due)
        except Exception as error:  # noqa: BLE001 - a rebalance got there first; it seeks too
            self.log.warning("Could not read again from %r: %r", due, error)

    async def _positions(self, tps: list[TP]) -> dict[TP, int]:
        positions = {}
        for tp in tps:
            try:
                position = await asyncio.wait_for(
                    self._thread.position(faust_aiokafka.ensure_aiokafka_TP(tp)), timeout=5
                )
            except Exception:  # noqa: BLE001, S112 - not assigned or not known yet: asked next time
                continue
            if position is not None:
                positions[tp] = position
        return positions


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer

    def __init__(self, *args: Any, hole_reread_s: float = DEFAULT_HOLE_REREAD_S, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.hole_reread_s = hole_reread_s
