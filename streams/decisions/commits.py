"""Which offset a partition may commit: only the end of a run of confirmed offsets.

Per partition the rule keeps `base`, the offset Kafka has committed (0 is a real value;
a partition never committed starts at its earliest offset), and the offsets the agent
confirmed after their side effects were. It commits `base + n` only when every offset
in `[base, base + n)` was confirmed: an offset that was fetched but never confirmed is
a hole, and nothing above a hole commits. Gaps are never assumed: the source topics are
neither compacted nor transactional, so every offset is a record the agent must see.
`base` moves only when Kafka accepted a commit. When confirmations wait above a hole for
longer than a limit (or the partition was fetched past an unconfirmed base while nothing
is in flight), the partition is to be read again from `base`: a duplicate, never a loss.
"""

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

P = TypeVar("P", bound=Hashable)


@dataclass
class _Partition:
    base: int | None = None  # None until the broker's committed offset is known
    confirmed: set[int] = field(default_factory=set)
    hole_seen_at: float | None = None


class CommitRule(Generic[P]):
    def __init__(self, stuck_after_s: float) -> None:
        self.stuck_after_s = stuck_after_s
        self._partitions: dict[P, _Partition] = {}

    def assign(self, partition: P) -> None:
        """Starts tracking a partition; it commits nothing until its base is known."""
        self._partitions.setdefault(partition, _Partition())

    def revoke(self, partition: P) -> None:
        self._partitions.pop(partition, None)

    def tracked(self) -> list[P]:
        return list(self._partitions)

    def base(self, partition: P) -> int | None:
        state = self._partitions.get(partition)
        return state.base if state else None

    def start_at(self, partition: P, committed: int | None, earliest: int) -> int:
        """Sets the base from the broker: its committed offset, or the earliest offset
        when it has none (or when retention already removed the committed one). A base
        already moved by a commit of this assignment is never moved back."""
        state = self._partitions.setdefault(partition, _Partition())
        base = earliest if committed is None else max(committed, earliest)
        state.base = base if state.base is None else max(state.base, base)
        state.confirmed = {offset for offset in state.confirmed if offset >= state.base}
        return state.base

    def confirm(self, partition: P, offset: int) -> None:
        """Records that the event at `offset` finished, its side effects confirmed.
        Offsets of partitions not assigned here, or below the base, are ignored."""
        state = self._partitions.get(partition)
        if state is not None and (state.base is None or offset >= state.base):
            state.confirmed.add(offset)

    def committable(self) -> dict[P, int]:
        """Per partition, the offset to commit now: the end of the contiguous run of
        confirmed offsets starting at the base, when that run is not empty."""
        offsets = {}
        for partition, state in self._partitions.items():
            if state.base is None:
                continue
            end = state.base
            while end in state.confirmed:
                end += 1
            if end > state.base:
                offsets[partition] = end
        return offsets

    def committed(self, partition: P, offset: int) -> None:
        """Kafka accepted `offset` for the partition: the base moves there."""
        state = self._partitions.get(partition)
        if state is None or state.base is None or offset <= state.base:
            return
        state.base = offset
        state.confirmed = {o for o in state.confirmed if o >= offset}
        state.hole_seen_at = None

    def seeks_due(
        self, now: float, positions: Mapping[P, int] | None = None, busy: bool = True
    ) -> dict[P, int]:
        """Partitions waiting on a hole at their base for at least `stuck_after_s`, with
        the offset to read them again from. A partition waits on a hole when offsets
        above its base are confirmed but the base is not, or when it was fetched past its
        base (`positions`, the next offset to fetch) while no event is in flight
        (`busy` is false): an event dropped before it reached the agent, with none after
        it. Each partition reported gets another `stuck_after_s` before the next time."""
        due = {}
        for partition, state in self._partitions.items():
            if not self._waits_on_hole(state, (positions or {}).get(partition), busy):
                state.hole_seen_at = None
            elif state.hole_seen_at is None:
                state.hole_seen_at = now
            elif now - state.hole_seen_at >= self.stuck_after_s:
                due[partition] = cast(int, state.base)
                state.hole_seen_at = now
        return due

    @staticmethod
    def _waits_on_hole(state: _Partition, position: int | None, busy: bool) -> bool:
        base = state.base
        if base is None or base in state.confirmed:
            return False
        if state.confirmed:
            return True  # every confirmed offset is above the base
        return not busy and position is not None and position > base
