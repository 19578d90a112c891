"""The load: webhooks over many leads and deals, each a status change that converts, so
the conversions to expect are known exactly; posted paced, as Zoho posts them."""

import asyncio
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import aiohttp

from harness.pipeline import wait_for
from streams.decisions.event import event_id
from zoho.fields import Module

SOURCE_ID = "chaos"
API_KEY = "chaos-api-key-0123456789"
# Every status on these ladders maps to an event of its own, so each webhook of a record
# converts whatever order the webhooks of that record arrive in.
LADDERS: dict[Module, tuple[tuple[str, str], ...]] = {
    Module.LEADS: (
        ("Contacted", "Lead"),
        ("Qualified", "QualifiedLead"),
        ("Pre-Qualified", "ConvertedLead"),
    ),
    Module.DEALS: (
        ("Qualification", "QualifiedOpportunity"),
        ("Negotiation", "InitiateCheckout"),
        ("Closed Won", "Purchase"),
    ),
}


def sources_yaml(status_map: dict[Module, dict[str, str]] | None = None) -> str:
    mapping = status_map if status_map is not None else ladder_map()
    lines = [
        "sources:",
        f"  - id: {SOURCE_ID}",
        f"    api_key: {API_KEY}",
        '    exchange_rate: "1.25"',
        "    currency: EUR",
        "    default_country: DE",
        "    status_map:",
    ]
    for module, statuses in mapping.items():
        lines.append(f"      {module.value}:")
        lines += [f'        "{status}": "{event}"' for status, event in statuses.items()]
    return "\n".join(lines) + "\n"


def ladder_map() -> dict[Module, dict[str, str]]:
    return {module: dict(ladder) for module, ladder in LADDERS.items()}


@dataclass(frozen=True)
class Webhook:
    module: Module
    record_id: str
    cdp_id: str
    status: str
    event_name: str
    amount: str

    def fields(self) -> dict[str, str]:
        common = {"cdp_id": self.cdp_id, "modified_by": "chaos@example.com"}
        if self.module is Module.LEADS:
            return common | {
                "lead_id": self.record_id,
                "lead_status": self.status,
                "annual_revenue": self.amount,
                "email": f"{self.record_id}@example.com",
            }
        return common | {"deal_id": self.record_id, "stage": self.status, "amount": self.amount}

    @property
    def event_id(self) -> str:
        return event_id(SOURCE_ID, self.module, self.record_id, self.event_name)


def plan(
    rng: random.Random, count: int, tag: str, ladders: dict[Module, Sequence[tuple[str, str]]]
) -> list[Webhook]:
    """`count` webhooks over records of both modules, 1–3 status changes each, the
    records' webhooks interleaved."""
    per_record: list[list[Webhook]] = []
    total = 0
    while total < count:
        module = rng.choice(sorted(ladders, key=lambda m: m.value))
        ladder = ladders[module]
        steps = min(rng.randint(1, len(ladder)), count - total)
        record_id = f"{tag}{len(per_record):05d}"
        chosen = sorted(rng.sample(range(len(ladder)), steps))
        per_record.append(
            [
                Webhook(
                    module,
                    record_id,
                    f"cdp-{record_id}",
                    ladder[i][0],
                    ladder[i][1],
                    f"{rng.randint(1, 99999)}.{rng.randint(0, 99):02d}",
                )
                for i in chosen
            ]
        )
        total += steps
    # Interleave: each next webhook comes from a random record that has some left.
    queues = [list(reversed(webhooks)) for webhooks in per_record]
    ordered: list[Webhook] = []
    while queues:
        queue = rng.choice(queues)
        ordered.append(queue.pop())
        if not queue:
            queues.remove(queue)
    return ordered


@dataclass
class Poster:
    """Posts like Zoho: once, no retry; anything but a 2xx within the timeout is refused."""

    url: str
    concurrency: int
    timeout_s: float
    accepted: list[tuple[Webhook, float]] = field(default_factory=list)
    refused: list[tuple[Webhook, str]] = field(default_factory=list)
    launched: int = 0
    _in_flight: set["asyncio.Task[None]"] = field(default_factory=set)
    _open: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._open.set()

    async def post_all(self, webhooks: Iterable[Webhook], rate: float) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        # A connection per webhook, as Zoho posts: none outlives a restarted ingress.
        connector = aiohttp.TCPConnector(limit=self.concurrency, force_close=True)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            next_at = time.monotonic()
            for webhook in webhooks:
                # Paced: a steady stream, so faults land in the middle of it.
                next_at = max(next_at + 1 / rate, time.monotonic())
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                await limit.acquire()
                while not self._open.is_set():  # paused: checked right before the post
                    limit.release()
                    await self._open.wait()
                    await limit.acquire()
                    next_at = time.monotonic()
                task = asyncio.create_task(self._post(session, webhook, limit))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                self.launched += 1
            await asyncio.gather(*self._in_flight)

    async def _post(
        self, session: aiohttp.ClientSession, webhook: Webhook, limit: asyncio.Semaphore
    ) -> None:
        try:
            async with session.post(
                self.url, params={"api_key": API_KEY}, data=webhook.fields()
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    self.accepted.append((webhook, time.monotonic()))
                else:
                    self.refused.append((webhook, f"HTTP {response.status}"))
        except (aiohttp.ClientError, TimeoutError) as error:
            self.refused.append((webhook, type(error).__name__))
        finally:
            limit.release()

    async def pause(self) -> None:
        """No new posts; returns once every post in flight has its answer."""
        self._open.clear()
        await asyncio.gather(*list(self._in_flight))

    def resume(self) -> None:
        self._open.set()

    async def posted(self, count: int, timeout: float = 600) -> None:
        """Waits until `count` posts have been launched."""

        async def enough() -> bool:
            return self.launched >= count

        await wait_for(enough, timeout, f"{count} webhooks posted")
