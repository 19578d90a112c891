"""Nothing accepted is lost, whatever breaks: each scenario posts a paced load of
webhooks that all convert, breaks a real process on the way, and counts at the CDP.

Every webhook the ingress answered 2xx must arrive as its conversion (duplicates are
allowed: same event_id); and the ingress must answer 2xx to every webhook, since Zoho
never retries one. Fault timings come from a seed printed with each line."""

import asyncio
import random
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.pipeline import wait_for
from tests.chaos.cluster import BIN, REPO, Broker, Pipeline, running_pipeline
from tests.chaos.load import LADDERS, ladder_map, plan, sources_yaml
from tests.chaos.scenario import ChaosSettings, Report, Run, run
from zoho.fields import Module

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

SETTINGS = ChaosSettings.from_env()
REPEATS = range(SETTINGS.repeats)
REPORTS: list[Report] = []


@pytest.fixture(scope="module")
def run_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Every process's log and the broker's data, kept when something failed (pytest's own
    temporary directories are pruned by the next sessions, too soon for a post-mortem)."""
    path = REPO / ".chaos" / f"{time.strftime('%Y%m%d-%H%M%S')}-seed{SETTINGS.seed}"
    path.mkdir(parents=True)
    failed_before = request.session.testsfailed
    yield path
    if request.session.testsfailed == failed_before:
        shutil.rmtree(path, ignore_errors=True)
    else:
        show_line(f"chaos logs kept in {path}", request)


@pytest.fixture
def workdir(run_dir: Path, request: pytest.FixtureRequest) -> Path:
    path = run_dir / re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def broker(run_dir: Path) -> Iterator[Broker]:
    """A broker of this module's own: scenarios SIGKILL it."""
    broker = Broker(run_dir / "broker")
    broker.start(fresh=True)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module", autouse=True)
def totals(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    show_line("\n".join(_totals(REPORTS)), request)


def _totals(reports: list[Report]) -> list[str]:
    lines = [f"chaos totals (seed {SETTINGS.seed}):"]
    for name in dict.fromkeys(r.scenario for r in reports):
        runs = [r for r in reports if r.scenario == name]
        lines.append(
            f"  {name:<22} runs={len(runs)} "
            + " ".join(
                f"{key}={sum(getattr(r, key) for r in runs)}"
                for key in ("accepted", "unique", "duplicates", "lost", "refused")
            )
        )
    return lines


@pytest.fixture
def pipeline(broker: Broker, workdir: Path) -> Iterator[Pipeline]:
    with running_pipeline(broker, workdir, sources_yaml()) as running:
        yield running


def rng_for(name: str, repeat: int) -> random.Random:
    return random.Random(f"{SETTINGS.seed}:{name}:{repeat}")  # noqa: S311 - fault timings


def show(report: Report, request: pytest.FixtureRequest) -> None:
    REPORTS.append(report)
    report.save(SETTINGS.results)
    show_line("\n" + report.line(), request)


def show_line(line: str, request: pytest.FixtureRequest) -> None:
    """On the terminal even while pytest captures output."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        print(line, flush=True)  # noqa: T201


def assert_nothing_lost(report: Report, pipeline: Pipeline) -> None:
    assert (report.lost, report.refused, report.unexpected) == (0, 0, 0), (
        report.line() + "\n" + pipeline.tails()
    )


def start(pipeline: Pipeline, worker_module: str | None = None) -> None:
    pipeline.start_ingress()
    pipeline.start_worker(module=worker_module)


async def sleep_until(moment: float) -> None:
    # A fault's planned duration, not a wait for something to settle.
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


@pytest.mark.parametrize("repeat", REPEATS)
async def test_worker_sigkill_and_restart(
    pipeline: Pipeline, repeat: int, request: pytest.FixtureRequest
) -> None:
    async def fault(chaos: Run) -> float:
        fraction = await chaos.at_fraction(0.2, 0.6)
        chaos.pipeline.processes["worker"].kill()
        chaos.pipeline.start_worker()
        chaos.note(f"kill -9 at {fraction:.0%}")
        return time.monotonic()

    start(pipeline)
    report = await run("worker-sigkill", pipeline, SETTINGS, rng_for("kill", repeat), fault)
    show(report, request)
    assert_nothing_lost(report, pipeline)


@pytest.mark.parametrize("repeat", REPEATS)
async def test_cdp_down_and_hanging_while_a_worker_is_stopped(
    broker: Broker, workdir: Path, repeat: int, request: pytest.FixtureRequest
) -> None:
    # The sink's timeout well below the hang, so the hang is a timeout to it.
    with running_pipeline(broker, workdir, sources_yaml(), {"CDP_TIMEOUT_S": "1"}) as pipeline:

        async def fault(chaos: Run) -> float:
            fraction = await chaos.at_fraction(0.1, 0.3)
            cdp, outage = chaos.pipeline.cdp, chaos.settings.outage_s
            began = time.monotonic()
            cdp.mode = "503"

            async def outage_plan() -> None:
                await sleep_until(began + outage / 2)
                cdp.mode = "hang"
                await sleep_until(began + outage)
                cdp.mode = "up"

            playing = asyncio.create_task(outage_plan())
            await sleep_until(began + chaos.rng.uniform(0.2, 0.8) * outage)

            async def sink_failing() -> bool:
                return cdp.failed_requests > 0

            await wait_for(sink_failing, 60, "the sink to meet the outage")
            worker = chaos.pipeline.processes["worker"]
            stopped_in = f"{cdp.mode} phase"
            clean = await asyncio.to_thread(worker.terminate, chaos.settings.grace_s)
            chaos.pipeline.start_worker()
            await playing
            chaos.note(
                f"outage {outage:.0f}s from {fraction:.0%}; SIGTERM in the {stopped_in}, "
                + ("exited" if clean else f"SIGKILL after {chaos.settings.grace_s:.0f}s grace")
            )
            return time.monotonic()

        start(pipeline)
        report = await run("cdp-outage+sigterm", pipeline, SETTINGS, rng_for("cdp", repeat), fault)
        show(report, request)
        assert_nothing_lost(report, pipeline)


@pytest.mark.parametrize("repeat", REPEATS)
async def test_a_second_worker_joins_and_is_killed(
    pipeline: Pipeline, repeat: int, request: pytest.FixtureRequest
) -> None:
    async def fault(chaos: Run) -> float:
        fraction = await chaos.at_fraction(0.0, 0.1)
        second = chaos.pipeline.start_worker("worker-2")

        async def two_members() -> bool:
            return await chaos.pipeline.group_members() >= 2

        await wait_for(two_members, 120, "the second worker in the group")
        joined = chaos.progress()
        await sleep_until(time.monotonic() + chaos.rng.uniform(1, 4))
        second.kill()
        chaos.note(
            f"joins at {fraction:.0%} (in group at {joined:.0%}), kill -9 at {chaos.progress():.0%}"
        )
        return time.monotonic()

    start(pipeline)
    # Slower, so that both rebalances happen while webhooks flow: a worker takes a while
    # to start.
    report = await run(
        "second-worker", pipeline, SETTINGS, rng_for("join", repeat), fault, rate=SETTINGS.rate / 2
    )
    show(report, request)
    assert_nothing_lost(report, pipeline)


@pytest.mark.parametrize("repeat", REPEATS)
async def test_a_replay_after_a_mapping_fix_while_a_worker_restarts(
    broker: Broker, workdir: Path, repeat: int, request: pytest.FixtureRequest
) -> None:
    rng = rng_for("replay", repeat)
    before = ladder_map()
    del before[Module.LEADS]["Contacted"]  # the mapping that is missing, then fixed
    window = plan(rng, SETTINGS.webhooks // 3, "c", {Module.LEADS: LADDERS[Module.LEADS][:1]})
    times: dict[str, datetime] = {}

    async def before_load(chaos: Run) -> None:
        # The window: webhooks that convert nothing under the old mapping.
        times["since"] = datetime.now(UTC)
        await chaos.poster.post_all(window, chaos.settings.rate)
        times["until"] = datetime.now(UTC)
        await wait_for(chaos.pipeline.caught_up, 180, "the worker to finish the window")
        assert not chaos.pipeline.cdp.delivered().keys() & {w.event_id for w in window}
        # The fix, imported through the admin API, and a deploy of the worker.
        fixed = chaos.pipeline.workdir / "sources-fixed.yaml"
        fixed.write_text(sources_yaml())
        imported = await asyncio.to_thread(
            subprocess.run,  # our own command
            [str(BIN / "zoho-cdp-sources"), "import", str(fixed), "--force"],
            cwd=REPO,
            env=chaos.pipeline.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert imported.returncode == 0, imported.stdout + imported.stderr
        await asyncio.to_thread(chaos.pipeline.processes["worker"].terminate, 30)
        chaos.pipeline.start_worker()

    async def fault(chaos: Run) -> float:
        # The replay while new webhooks flow; the worker restarts in the middle of it.
        replaying = asyncio.create_task(
            asyncio.to_thread(replay, chaos.pipeline, times["since"], times["until"])
        )
        share = chaos.rng.uniform(0.1, 0.7)

        async def trickled_in() -> bool:
            size = await chaos.pipeline.topic_size("zoho.webhooks.replay")
            return size >= share * len(window) or replaying.done()

        await wait_for(trickled_in, 300, "replayed webhooks in the replay topic")
        chaos.pipeline.processes["worker"].kill()
        chaos.pipeline.start_worker()
        restarted = time.monotonic()
        result = await replaying
        assert result.returncode == 0, result.stdout + result.stderr
        chaos.note(f"window of {len(window)}; kill -9 at {share:.0%} of the replay")
        return restarted

    with running_pipeline(broker, workdir, sources_yaml(before)) as pipeline:
        start(pipeline)
        report = await run(
            "replay+restart",
            pipeline,
            SETTINGS,
            rng,
            fault,
            before_load,
            webhooks=SETTINGS.webhooks - len(window),
        )
        show(report, request)
        assert_nothing_lost(report, pipeline)


def replay(
    pipeline: Pipeline, since: datetime, until: datetime
) -> subprocess.CompletedProcess[str]:
    command = ["--source", "chaos", "--since", since.isoformat(), "--until", until.isoformat()]
    return subprocess.run(  # noqa: S603 - our own command
        [str(BIN / "zoho-cdp-replay"), *command],
        cwd=REPO,
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_the_suite_catches_a_worker_that_marks_before_it_sends(
    pipeline: Pipeline, request: pytest.FixtureRequest
) -> None:
    """The negative control: scenario 1 with a broken agent, which kills itself between
    marking a record and sending its conversion. The suite must report the loss."""
    rng = rng_for("control", 0)
    broken = "tests.chaos.broken_worker"
    die_at = rng.randint(20, SETTINGS.webhooks // 4)

    async def fault(chaos: Run) -> float:
        worker = chaos.pipeline.processes["worker"]
        await worker.exited(300)
        chaos.pipeline.start_worker(module=broken)
        chaos.note(f"died at conversion {die_at}, {chaos.progress():.0%} posted")
        return time.monotonic()

    pipeline.start_ingress()
    pipeline.start_worker(module=broken, extra_env={"CHAOS_DIE_AT_CONVERSION": str(die_at)})
    report = await run("control:mark-before-send", pipeline, SETTINGS, rng, fault)
    show(report, request)
    assert report.lost >= 1, report.line()
    assert report.refused == 0, report.line()


@pytest.mark.parametrize("repeat", REPEATS)
async def test_the_broker_killed_while_webhooks_are_posted(
    pipeline: Pipeline, repeat: int, request: pytest.FixtureRequest
) -> None:
    async def fault(chaos: Run) -> float:
        fraction = await chaos.at_fraction(0.2, 0.5)
        down = chaos.rng.uniform(1, 5)
        chaos.pipeline.broker.kill()
        await sleep_until(time.monotonic() + down)
        began = time.monotonic()
        await asyncio.to_thread(chaos.pipeline.broker.start)
        chaos.note(
            f"kill -9 at {fraction:.0%}, down {down:.1f}s + {time.monotonic() - began:.1f}s restart"
        )
        return time.monotonic()

    start(pipeline)
    report = await run("broker-sigkill", pipeline, SETTINGS, rng_for("broker", repeat), fault)
    show(report, request)
    assert_nothing_lost(report, pipeline)


@pytest.mark.parametrize("repeat", REPEATS)
async def test_the_ingress_killed_while_webhooks_are_spooled(
    pipeline: Pipeline, repeat: int, request: pytest.FixtureRequest
) -> None:
    async def fault(chaos: Run) -> float:
        fraction = await chaos.at_fraction(0.2, 0.5)
        chaos.pipeline.broker.kill()
        accepted = len(chaos.poster.accepted)
        # While Kafka is down, what the ingress accepts can only be in its spool.
        await sleep_until(time.monotonic() + chaos.rng.uniform(2, 5))
        # Posts to an ingress that is down would be refused whatever it does: Zoho
        # pauses here, as a load balancer would route around the replica.
        await chaos.poster.pause()
        spooled = len(chaos.poster.accepted) - accepted
        chaos.pipeline.processes["ingress"].kill()
        await asyncio.to_thread(chaos.pipeline.broker.start)
        chaos.pipeline.start_ingress()
        await wait_for(chaos.pipeline.ingress_ready, 120, "the restarted ingress")
        chaos.poster.resume()
        chaos.note(f"broker down at {fraction:.0%}; ingress kill -9 with {spooled} spooled")
        return time.monotonic()

    start(pipeline)
    report = await run("ingress-sigkill+spool", pipeline, SETTINGS, rng_for("spool", repeat), fault)
    show(report, request)
    assert_nothing_lost(report, pipeline)
