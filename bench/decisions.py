"""Per-webhook cost of the worker's decisions, without Kafka.

The worker's own step, `streams.decisions.process.process`, for each message, with a dict
as the status table: decode the envelope, validate it, read and write the record's state,
track the status (which builds the conversion: identity hashing, phone numbers, money).
The baseline is the least any consumer of the raw topic does: parse the same bytes as JSON
and as a RawEnvelope."""

import asyncio
import gc
import json
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.envelope import RawEnvelope
from schemas.source import SourceConfig
from streams.decisions.process import Rejected, decode_envelope, process, validated_change
from streams.decisions.status import RecordState
from streams.decisions.validation import InvalidWebhook
from zoho.fields import Module

Table = dict[str, dict[str, Any]]


def baseline(values: Sequence[bytes]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for raw in values:
        try:
            json.loads(raw)
            RawEnvelope.model_validate_json(raw)
        except ValueError:  # pydantic's ValidationError is one
            outcomes["undecodable"] += 1
        else:
            outcomes["decoded"] += 1
    return outcomes


def decide_all(
    values: Sequence[bytes], sources: Mapping[str, SourceConfig], table: Table
) -> Counter[str]:
    """The agent's step with a dict as the Faust table."""
    return asyncio.run(_decide_all(values, sources, table))


async def _decide_all(
    values: Sequence[bytes], sources: Mapping[str, SourceConfig], table: Table
) -> Counter[str]:
    outcomes: Counter[str] = Counter()

    def state_of(key: str) -> RecordState:
        return RecordState.from_json(table.get(key))

    for raw in values:
        outcome = await process(raw, sources, state_of, no_lookup)
        if isinstance(outcome, Rejected):
            outcomes["invalid"] += 1
            continue
        if outcome.changed:
            table[outcome.key] = outcome.new_state.to_json()
        outcomes["converted" if outcome.conversion else "tracked"] += 1
    return outcomes


async def no_lookup(
    _source: SourceConfig, _module: Module, _record_id: str
) -> dict[str, Any] | None:
    raise AssertionError("the benchmark's sources neither verify nor enrich")


def decode_only(values: Sequence[bytes]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for raw in values:
        try:
            decode_envelope(raw)
        except InvalidWebhook:
            outcomes["invalid"] += 1
    return outcomes


def decode_and_validate(
    values: Sequence[bytes], sources: Mapping[str, SourceConfig]
) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    for raw in values:
        try:
            validated_change(decode_envelope(raw), sources)
        except InvalidWebhook:
            outcomes["invalid"] += 1
    return outcomes


@dataclass(frozen=True)
class Timing:
    name: str
    messages: int
    runs_s: list[float]
    peak_bytes: int | None = None

    @property
    def micros(self) -> list[float]:
        return [seconds / self.messages * 1e6 for seconds in self.runs_s]


def timed_runs(repeats: int, runs: Mapping[str, Callable[[], object]]) -> dict[str, list[float]]:
    """`repeats` timings of each; the runs take turns, so a busy spell on the machine
    slows all of them rather than one."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            gc.collect()
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return times


def peak_memory(run: Callable[[], object]) -> int:
    """Bytes allocated at the peak of one run, over what existed before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


@dataclass(frozen=True)
class DecisionResults:
    baseline: Timing
    decisions: Timing
    stages: list[Timing]
    outcomes: Counter[str]


def measure(
    values: Sequence[bytes],
    sources: Mapping[str, SourceConfig],
    repeats: int,
) -> DecisionResults:
    count = len(values)
    # One untimed pass fills caches (phonenumbers metadata, babel, pydantic) as a
    # running worker has them.
    outcomes = decide_all(values, sources, {})

    times = timed_runs(
        repeats,
        {
            "baseline": lambda: baseline(values),
            # A fresh table each run, so every run emits the same conversions.
            "decisions": lambda: decide_all(values, sources, {}),
            "decode": lambda: decode_only(values),
            "validate": lambda: decode_and_validate(values, sources),
        },
    )
    # The table is kept to the end, as the worker keeps it: it is part of the peak.
    base_peak = peak_memory(lambda: baseline(values))
    full_peak = peak_memory(lambda: decide_all(values, sources, {}))
    return DecisionResults(
        baseline=Timing("json + RawEnvelope", count, times["baseline"], base_peak),
        decisions=Timing("decode+validate+track", count, times["decisions"], full_peak),
        stages=[
            Timing("decode_envelope", count, times["decode"]),
            Timing("+ validated_change", count, times["validate"]),
        ],
        outcomes=outcomes,
    )
