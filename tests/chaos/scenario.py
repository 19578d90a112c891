"""One chaos run: load posted while a fault plays out, then the count of what arrived."""

import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.pipeline import wait_for
from tests.chaos.cluster import Pipeline, committed_offsets, topic_records
from tests.chaos.load import LADDERS, Poster, Webhook, plan
from zoho.fields import Module


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class ChaosSettings:
    """What CHAOS_* environment variables set; the defaults keep the module short for CI."""

    seed: int
    webhooks: int = 500  # per scenario
    rate: float = 50.0  # webhooks per second
    repeats: int = 1
    outage_s: float = 8.0  # the CDP's outage (the 30 s with CHAOS_OUTAGE_S=30)
    grace_s: float = 3.0  # SIGTERM to SIGKILL, as an orchestrator's grace period
    post_timeout_s: float = 15.0  # how long a post may take before it counts as refused
    concurrency: int = 16
    drain_s: float = 150.0
    results: Path | None = None

    @classmethod
    def from_env(cls) -> "ChaosSettings":
        seed = os.environ.get("CHAOS_SEED")
        results = os.environ.get("CHAOS_RESULTS")
        return cls(
            seed=int(seed) if seed else random.SystemRandom().randrange(10**6),
            webhooks=int(os.environ.get("CHAOS_WEBHOOKS", cls.webhooks)),
            rate=_env_float("CHAOS_RATE", cls.rate),
            repeats=int(os.environ.get("CHAOS_REPEATS", cls.repeats)),
            outage_s=_env_float("CHAOS_OUTAGE_S", cls.outage_s),
            grace_s=_env_float("CHAOS_GRACE_S", cls.grace_s),
            post_timeout_s=_env_float("CHAOS_POST_TIMEOUT_S", cls.post_timeout_s),
            drain_s=_env_float("CHAOS_DRAIN_S", cls.drain_s),
            results=Path(results) if results else None,
        )


@dataclass
class Report:
    scenario: str
    seed: int
    accepted: int
    unique: int
    duplicates: int
    lost: int
    refused: int
    unexpected: int
    recover_s: float | None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        recover = f"{self.recover_s:.1f}s" if self.recover_s is not None else "never"
        return (
            f"chaos {self.scenario:<22} seed={self.seed:<7} accepted={self.accepted} "
            f"unique={self.unique} duplicates={self.duplicates} lost={self.lost} "
            f"refused={self.refused} unexpected={self.unexpected} recover={recover}"
            + (f"  [{'; '.join(self.notes)}]" if self.notes else "")
        )

    def save(self, path: Path | None) -> None:
        if path is not None:
            with path.open("a") as out:
                out.write(json.dumps(asdict(self)) + "\n")


@dataclass
class Run:
    """What a scenario's fault needs: the pipeline, the load in progress, its dice."""

    name: str
    pipeline: Pipeline
    poster: Poster
    rng: random.Random
    settings: ChaosSettings
    webhooks: list[Webhook]
    notes: list[str] = field(default_factory=list)
    posted_before: int = 0  # warm-up and anything posted before the load

    async def at_fraction(self, low: float, high: float) -> float:
        """Waits until a random fraction (from the seed) of the load has been posted."""
        fraction = self.rng.uniform(low, high)
        await self.poster.posted(self.posted_before + int(fraction * len(self.webhooks)))
        return fraction

    def progress(self) -> float:
        return (self.poster.launched - self.posted_before) / len(self.webhooks)

    def note(self, text: str) -> None:
        self.notes.append(text)


Fault = Callable[[Run], Awaitable[float]]


def warm_up_webhook(tag: str) -> Webhook:
    rng = random.Random(tag)  # noqa: S311 - a seeded load, not a secret
    return plan(rng, 1, f"{tag}w", {Module.LEADS: LADDERS[Module.LEADS][-1:]})[0]


async def warm_up(pipeline: Pipeline, poster: Poster, tag: str) -> None:
    """Ingress and worker up, and one conversion through, before the faults begin."""
    await wait_for(pipeline.ingress_ready, 120, "the ingress to be ready")
    webhook = warm_up_webhook(tag)
    await poster.post_all([webhook], rate=1)
    assert poster.accepted, f"warm-up webhook refused: {poster.refused}"

    async def through() -> bool:
        return webhook.event_id in pipeline.cdp.delivered()

    await wait_for(through, 180, "the warm-up conversion at the CDP")


async def run(
    name: str,
    pipeline: Pipeline,
    settings: ChaosSettings,
    rng: random.Random,
    fault: Fault,
    before_load: Callable[[Run], Awaitable[None]] | None = None,
    webhooks: int | None = None,
    rate: float | None = None,
) -> Report:
    """Warm-up, `before_load`, then the paced load with `fault` playing out during it;
    the fault returns when it ended, for the time to recover."""
    poster = Poster(pipeline.source_url, settings.concurrency, settings.post_timeout_s)
    await warm_up(pipeline, poster, pipeline.prefix.replace(".", ""))
    load = plan(rng, settings.webhooks if webhooks is None else webhooks, "r", LADDERS)
    chaos = Run(name, pipeline, poster, rng, settings, load)
    if before_load is not None:
        await before_load(chaos)
    chaos.posted_before = poster.launched
    posting = asyncio.create_task(poster.post_all(load, rate or settings.rate))
    try:
        fault_end = await fault(chaos)
        await posting
    finally:
        posting.cancel()
    expected = {w.event_id for w, _ in poster.accepted}
    await drain(pipeline, expected, settings.drain_s)
    delivered = pipeline.cdp.delivered()
    missing = expected - delivered.keys()
    if missing:
        lost = [w for w, _ in poster.accepted if w.event_id in missing]
        chaos.notes += await trace_lost(pipeline, lost[:5])
        pipeline.keep_topics = True  # for a look with Kafka's own tools
    # The longest any conversion waited after the fault ended: counted from the later of
    # its acceptance and the fault's end, so a stall right after the fault shows too.
    recover = (
        max(0.0, *(min(delivered[w.event_id]) - max(at, fault_end) for w, at in poster.accepted))
        if not missing
        else None
    )
    if poster.refused:
        reasons: dict[str, int] = {}
        for _, reason in poster.refused:
            reasons[reason] = reasons.get(reason, 0) + 1
        chaos.note("refused: " + ", ".join(f"{r} ×{n}" for r, n in sorted(reasons.items())))
    return Report(
        scenario=name,
        seed=settings.seed,
        accepted=len(poster.accepted),
        unique=len(delivered.keys() & expected),
        duplicates=sum(len(times) - 1 for times in delivered.values()),
        lost=len(missing),
        refused=len(poster.refused),
        # A refused webhook may still have reached Kafka: it is neither expected nor odd.
        unexpected=len(delivered.keys() - expected - {w.event_id for w, _ in poster.refused}),
        recover_s=recover,
        notes=chaos.notes,
    )


async def drain(pipeline: Pipeline, expected: set[str], timeout: float) -> None:
    """Until every expected conversion is at the CDP, or the workers have committed
    everything and nothing more can come (a loss), or the deadline."""
    deadline = time.monotonic() + timeout
    settled_since: float | None = None
    while time.monotonic() < deadline:
        if expected <= pipeline.cdp.delivered().keys():
            return
        if not any(p.alive for n, p in pipeline.processes.items() if n.startswith("worker")):
            return
        if await pipeline.caught_up():
            settled_since = settled_since or time.monotonic()
            # A spool may still be draining into the raw topic: settled for a while.
            if time.monotonic() - settled_since > 8:
                return
        else:
            settled_since = None
        await asyncio.sleep(0.5)


async def trace_lost(pipeline: Pipeline, lost: list[Webhook]) -> list[str]:
    """Where each lost conversion got to, from the broker's own records."""
    committed = await committed_offsets(pipeline)
    names = (
        "zoho.webhooks.raw",
        "zoho.webhooks.replay",
        "zoho.webhooks.invalid",
        "cdp.conversions",
        "cdp.conversions.deadletter",
    )
    records = {name: await topic_records(pipeline, name) for name in names}

    def envelope(value: dict[str, Any]) -> dict[str, Any]:
        # Raw and replay messages are envelopes; parked ones carry theirs.
        return dict(value.get("envelope") or value)

    def hits(webhook: Webhook) -> list[str]:
        fields = webhook.fields().items()
        found = []
        for name in names:
            for p, o, value in records[name]:
                event = value.get("event") or value
                if event.get("event_id") == webhook.event_id:
                    found.append(f"{name} p{p}@{o}")
                elif fields <= dict(envelope(value).get("parameters") or {}).items():
                    detail = f" {value['reasons']}" if "reasons" in value else ""
                    found.append(
                        f"{name} p{p}@{o} envelope {envelope(value).get('envelope_id')}{detail}"
                    )
                else:
                    continue
                found[-1] += f" (committed {committed.get((name, p), 'none')})"
        return found

    return [
        f"lost {w.event_name} of {w.record_id}: " + (", ".join(hits(w)) or "in no topic")
        for w in lost
    ]
