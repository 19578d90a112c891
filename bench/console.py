"""`python -m bench.console`: how fast the console answers with many webhooks in the topics.

Fills the pipeline's topics with --webhooks raw envelopes (and, for a share of them,
conversions, delivery receipts and invalid records, as the worker would write them),
starts the ingress with the console in this process, and measures how long its index
takes to read everything, then the source page and traces by each kind of id, next to
`/healthz` as the baseline of the same server. The target: under a second per answer.
KAFKA_BOOTSTRAP_SERVERS names a broker to use; without it one is started."""

import argparse
import asyncio
import math
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

from bench.broker import kafka_broker
from harness.pipeline import free_port
from ingress.app import create_app
from ingress.console.state import CONSOLE
from schemas import topics
from schemas.conversion import ConversionEvent, DeliveryReceipt, UserData
from schemas.envelope import RawEnvelope, record_key
from schemas.records import InvalidRecord
from schemas.settings import Settings
from schemas.sources_file import parse_sources
from streams.commands.topic_plan import desired_topics
from streams.commands.topics import set_up_topics
from zoho.fields import Module

ADMIN_TOKEN = "bench-console-admin-token-0123456789"  # noqa: S105 - made up for the run
SOURCES = ("shop", "yen", "acme", "globex")
TARGET_S = 1.0


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(share * len(ordered))) - 1] if ordered else float("nan")


def messages(count: int, seed: int = 3) -> tuple[list[tuple[str, bytes, bytes]], list[str]]:
    """(topic, key, value) as the ingress and the worker write them; and a few ids."""
    rng = random.Random(seed)  # noqa: S311 - made-up data, not a secret
    start = datetime.now(UTC) - timedelta(hours=6)
    out: list[tuple[str, bytes, bytes]] = []
    ids: list[str] = []
    for n in range(count):
        source = SOURCES[n % len(SOURCES)]
        record = f"57257670{rng.randrange(count // 3 + 1):08d}"
        cdp_id = f"cdp-{record}"
        at = start + timedelta(milliseconds=n * 200)
        envelope = RawEnvelope(
            envelope_id=uuid.UUID(int=rng.getrandbits(128)).hex,
            source_id=source,
            received_at=at,
            parameters={
                "lead_id": record,
                "cdp_id": cdp_id,
                "lead_status": rng.choice(("Contacted", "Pre-Qualified", "Not Contacted")),
                "annual_revenue": "1000",
                "modified_by": "bench",
                "email": f"{n}@example.com",
            },
        )
        key = record_key(source, record)
        out.append((topics.RAW, key, envelope.model_dump_json().encode()))
        if n % 20 == 0:
            parked = InvalidRecord(
                reasons=["missing field 'cdp_id'"],
                envelope=envelope,
                topic=topics.RAW,
                partition=0,
                offset=n,
                rejected_at=at,
            )
            out.append((topics.INVALID, key, parked.model_dump_json().encode()))
        elif n % 5 == 0:
            event = ConversionEvent(
                event_id=str(uuid.UUID(int=rng.getrandbits(128))),
                event_name="ConvertedLead",
                event_time=at,
                source_id=source,
                module=Module.LEADS,
                record_id=record,
                cdp_id=cdp_id,
                status="Pre-Qualified",
                previous_status="Contacted",
                value=Decimal("1080.00"),
                original_value=Decimal("1000"),
                currency="USD",
                exchange_rate=Decimal("1.08"),
                modified_by="bench",
                user_data=UserData(em=["0" * 64]),
            )
            receipt = DeliveryReceipt(
                event_id=event.event_id,
                source_id=source,
                record_id=record,
                cdp_id=cdp_id,
                event_name=event.event_name,
                cdp_status=200,
                delivered_at=at,
            )
            out.append((topics.CONVERSIONS, cdp_id.encode(), event.model_dump_json().encode()))
            out.append(
                (topics.CONVERSIONS_DELIVERED, cdp_id.encode(), receipt.model_dump_json().encode())
            )
            if len(ids) < 30:
                ids += [cdp_id, record, envelope.envelope_id, event.event_id]
    return out, ids


async def fill(settings: Settings, batch: list[tuple[str, bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        linger_ms=20,
        max_batch_size=512 * 1024,
        acks="all",
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for topic, key, value in batch:
            pending.append(await producer.send(settings.topic(topic), value=value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def timed(
    call: Callable[[], Awaitable[tuple[int, str]]], repeats: int
) -> tuple[list[float], str]:
    seconds, page = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        status, page = await call()
        seconds.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"answer {status}")
    return seconds, page


async def run(bootstrap: str, count: int, repeats: int, progress: Callable[[str], None]) -> str:
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    settings = Settings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        app_id=f"{prefix}worker",
        admin_token=ADMIN_TOKEN,
        console_recent_per_source=200,
    )
    await set_up_topics(settings, desired_topics(settings))
    batch, ids = messages(count)
    progress(f"producing {len(batch)} messages ({count} webhooks)")
    fill_s = await fill(settings, batch)
    entries = [
        {
            "id": s,
            "api_key": f"{s}-bench-api-key-0123456789",
            "exchange_rate": "1.08",
            "currency": "USD",
        }
        for s in SOURCES
    ]
    app = create_app(settings, parse_sources(entries, {}))
    port = free_port()
    runner = web.AppRunner(app)
    await runner.setup()
    started = time.perf_counter()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    console = app._subapps[0][CONSOLE]  # noqa: SLF001 - the mounted console
    await asyncio.wait_for(console.feed.caught_up.wait(), 600)
    index_s = time.perf_counter() - started
    indexed = console.index.messages
    progress(f"index built: {indexed} messages in {index_s:.1f} s")
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:

            async def get(path: str) -> tuple[int, str]:
                async with session.get(base + path) as response:
                    return response.status, await response.text()

            _, page = await get("/console/sign-in")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            async with session.post(
                base + "/console/sign-in", data={"token": ADMIN_TOKEN, "csrf_token": csrf}
            ) as response:
                assert response.status == 200, response.status  # noqa: S101 - a broken run
            rows = []
            cases = [
                ("/healthz (baseline)", "/healthz"),
                ("sources page", "/console/sources"),
                ("source page", "/console/sources/shop"),
                ("trace by CDP ID", f"/console/trace?q={ids[0]}"),
                ("trace by record id", f"/console/trace?q={ids[1]}"),
                ("trace by envelope id", f"/console/trace?q={ids[2]}"),
                ("trace by event id", f"/console/trace?q={ids[3]}"),
            ]
            for name, path in cases:
                seconds, page = await timed(lambda path=path: get(path), repeats)
                if "trace" in name and "received" not in page:
                    raise RuntimeError(f"{name}: nothing found")
                p50, p99 = percentile(seconds, 0.5), percentile(seconds, 0.99)
                verdict = "" if "baseline" in name else ("ok" if p99 < TARGET_S else "SLOW")
                rows.append(f"{name:24}{p50 * 1000:>10.1f}{p99 * 1000:>10.1f}  {verdict}")
    finally:
        await runner.cleanup()
    return "\n".join(
        [
            f"== console: {count} webhooks, {len(batch)} messages in the topics "
            f"(written in {fill_s:.1f} s)",
            f"index built from the start in {index_s:.1f} s "
            f"({indexed / index_s:,.0f} msg/s, {indexed} messages)",
            f"{'answer':24}{'p50 ms':>10}{'p99 ms':>10}  (target: under {TARGET_S:.0f} s)",
            *rows,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__)
    parser.add_argument("--webhooks", type=int, default=100_000, help="in the topics [100000]")
    parser.add_argument("--repeats", type=int, default=30, help="requests per page [30]")
    arguments = parser.parse_args(argv)
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", flush=True)

    with kafka_broker() as broker:
        table = asyncio.run(run(broker.bootstrap, arguments.webhooks, arguments.repeats, progress))
    print("\n" + table, flush=True)


if __name__ == "__main__":
    main()
