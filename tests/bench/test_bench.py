"""The benchmark's loads are what its figures claim, and its figures add up."""

import random
import urllib.parse

import pytest
from aiohttp import web

from bench.common import Figure, percentile
from bench.decisions import decide_all
from bench.http_load import Pool, form_post
from bench.webhooks import backlog, form_webhook, sources
from harness.pipeline import free_port


@pytest.mark.parametrize("share", [0.1, 1 / 3])
def test_a_backlog_converts_as_often_as_it_says_and_the_worker_agrees(share: float) -> None:
    load = backlog(4000, share)
    assert len(load.records) == 4000
    assert load.conversions == pytest.approx(4000 * share, rel=0.15)
    # The part waits for exactly this many conversions: the worker's own decisions agree.
    outcomes = decide_all([value for _, value in load.records], sources(), {})
    assert outcomes["converted"] == load.conversions
    assert outcomes["invalid"] == 0


def test_a_backlog_has_one_to_four_webhooks_per_record() -> None:
    load = backlog(2000, 0.1)
    per_key: dict[bytes, int] = {}
    for key, _ in load.records:
        per_key[key] = per_key.get(key, 0) + 1
    assert set(per_key.values()) <= {1, 2, 3, 4}
    assert len(set(per_key.values())) == 4


def test_an_ingress_webhook_has_16_fields_and_about_600_bytes() -> None:
    rng = random.Random(1)  # noqa: S311 - a seeded load, not a secret
    sizes = []
    for number in range(200):
        _, fields = form_webhook(rng, number)
        assert len(fields) == 16
        sizes.append(len(urllib.parse.urlencode(fields)))
    assert 520 <= min(sizes) and max(sizes) <= 680
    assert 560 <= sum(sizes) / len(sizes) <= 640


def test_ratios_are_taken_run_by_run() -> None:
    figure = Figure("p", "rate", "/s", [80, 90, 200], [100, 100, 400], "base")
    assert figure.ratios == [0.8, 0.9, 0.5]
    figures = figure.as_json()
    assert (figures["median"], figures["min"], figures["max"]) == (90, 80, 200)
    assert (figures["ratio_median"], figures["ratio_min"], figures["ratio_max"]) == (0.8, 0.5, 0.9)


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([7.0], 0.99) == 7.0


async def test_the_lean_load_client_posts_the_form_the_server_parses() -> None:
    received: list[dict[str, str]] = []

    async def accept(request: web.Request) -> web.Response:
        received.append(dict(await request.post()))
        return web.json_response({"query": dict(request.query)}, status=202)

    app = web.Application()
    app.router.add_post("/sources/{source_id}", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pool = Pool("127.0.0.1", port)
    try:
        rng = random.Random(2)  # noqa: S311 - a seeded load, not a secret
        forms = [form_webhook(rng, number)[1] for number in range(3)]
        for fields in forms:
            request = form_post("/sources/shop", {"api_key": "k&y"}, fields)
            assert await pool.exchange(request) == 202
    finally:
        pool.close()
        await runner.cleanup()
    assert received == forms
    # Answers were read to their end: one connection carried all three.
    assert len(pool.opened) == 1
