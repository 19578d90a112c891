"""`python -m bench.run [--quick] [--only PART]...`: how fast the pipeline is, each part
alone on the machine, each figure beside a baseline measured in the same run.

Parts: decisions (no Kafka), backlog (the worker draining a backlog against a Faust
pass-through), ingress (against a bare aiohttp handler), e2e (202 to the CDP at a steady
rate), state (a million tracked records), sink (batching on and off). Every figure is
the median of the runs with their min and max; the ratio is taken run by run. One table
is printed and the same figures go to var/bench.json. KAFKA_BOOTSTRAP_SERVERS names a
broker to use; without it one is started for the run."""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from bench import backlog, decisions, e2e, ingress_load, sink, state
from bench.broker import kafka_broker
from bench.common import REPO, Figure, say
from bench.webhooks import decision_mix, sources

PARTS = ("decisions", "backlog", "ingress", "e2e", "state", "sink")

# Sizes per part: (quick, full).
SIZES = {
    "decisions": (2_000, 5_000),
    "backlog": (5_000, 100_000),
    "ingress": (2_000, 20_000),
    "paced_s": (4, 20),
    "e2e_s": (12, 60),
    "state": (50_000, 1_000_000),
    "sink_batched": (2_000, 20_000),
    "sink_single": (200, 2_000),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: about two minutes")
    parser.add_argument("--only", action="append", choices=PARTS, help="run this part (repeatable)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure [3]")
    parser.add_argument("--json", type=Path, default=REPO / "var" / "bench.json")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="sample the worker's backlog drains with py-spy into FILE (collapsed stacks)",
    )
    arguments = parser.parse_args(argv)
    if arguments.repeats < 1:
        parser.error("--repeats must be positive")
    quick = arguments.quick

    def size(name: str) -> int:
        return SIZES[name][0 if quick else 1]

    repeats = arguments.repeats
    if arguments.profile:
        backlog.PROFILE[:] = [arguments.profile]
    chosen = arguments.only or list(PARTS)
    started = time.monotonic()
    figures: list[Figure] = []
    loads: dict[str, list[float]] = {}
    with kafka_broker() if set(chosen) - {"decisions"} else nullcontext() as broker:
        bootstrap = broker.bootstrap if broker else ""
        runs: dict[str, Callable[[], list[Figure]]] = {
            "decisions": lambda: decision_figures(size("decisions"), repeats),
            "backlog": lambda: backlog.measure(bootstrap, size("backlog"), repeats),
            "ingress": lambda: ingress_load.measure(
                bootstrap, size("ingress"), size("paced_s"), repeats
            ),
            "e2e": lambda: e2e.measure(bootstrap, size("e2e_s"), repeats),
            "state": lambda: state.measure(bootstrap, size("state")),
            "sink": lambda: sink.measure(
                bootstrap, size("sink_batched"), size("sink_single"), repeats
            ),
        }
        for part in PARTS:
            if part not in chosen:
                continue
            say(
                f"== {part} (load average {os.getloadavg()[0]:.2f}) "
                f"[{time.monotonic() - started:.0f} s]"
            )
            loads[part] = [os.getloadavg()[0]]
            figures += runs[part]()
            loads[part].append(os.getloadavg()[0])
    elapsed = time.monotonic() - started
    machine = machine_info()
    print("\n" + table(figures, machine, loads, elapsed, quick), flush=True)
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "commit": commit(),
                "quick": quick,
                "repeats": repeats,
                "elapsed_s": round(elapsed, 1),
                "machine": machine,
                "load_average": loads,
                "figures": [figure.as_json() for figure in figures],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nfigures written to {arguments.json}", flush=True)


def decision_figures(count: int, repeats: int) -> list[Figure]:
    found = decisions.measure(decision_mix(count), sources(), repeats)
    outcomes = ", ".join(f"{n} {name}" for name, n in sorted(found.outcomes.items()))
    say(f"   {count} messages: {outcomes}")
    return [
        Figure(
            "0. decisions",
            "decode + validate + track: µs/webhook",
            "µs",
            found.decisions.micros,
            found.baseline.micros,
            "json.loads + RawEnvelope",
            higher_is_better=False,
        ),
        *(
            Figure(
                "0. decisions",
                f"  {stage.name}: µs/webhook",
                "µs",
                stage.micros,
                found.baseline.micros,
                "json.loads + RawEnvelope",
                higher_is_better=False,
            )
            for stage in found.stages
        ),
    ]


def table(
    figures: list[Figure],
    machine: dict[str, str],
    loads: dict[str, list[float]],
    elapsed: float,
    quick: bool,
) -> str:
    header = (
        f"{'figure':46}{'median':>10}{'min':>10}{'max':>10}  {'baseline':>10}"
        f"{'ratio':>8}{'(min–max)':>14}  target"
    )
    rows = [
        f"zoho-cdp bench{' --quick' if quick else ''}: {machine['cpu']}, {machine['cores']} "
        f"cores, Python {machine['python']}, {elapsed:.0f} s",
        header,
        "-" * len(header),
    ]
    part = ""
    for figure in figures:
        if figure.part != part:
            part = figure.part
            load = loads.get(_part_key(part))
            shown = f" (load average {load[0]:.1f} → {load[-1]:.1f})" if load else ""
            rows.append(f"{part}{shown}")
        values = figure.runs
        line = (
            f"  {figure.name[:44]:44}{_num(statistics.median(values))}"
            f"{_num(min(values))}{_num(max(values))}  "
        )
        if figure.baseline:
            ratios = figure.ratios
            line += (
                f"{_num(statistics.median(figure.baseline))}"
                f"{statistics.median(ratios):>7.2f}×"
                f"{f'({min(ratios):.2f}–{max(ratios):.2f})':>14}"
            )
        else:
            line += f"{'':>10}{'':>8}{'':>14}"
        line += f"  {figure.target}"
        rows.append(line.rstrip() + f"  [{figure.unit}]")
    rows.append("")
    rows.append(
        "baselines, by part: "
        + "; ".join(sorted({f"{f.part}: {f.baseline_name}" for f in figures if f.baseline_name}))
    )
    return "\n".join(rows)


def _part_key(part: str) -> str:
    return {
        "0. decisions": "decisions",
        "1. worker backlog": "backlog",
        "2. ingress": "ingress",
        "3. end to end": "e2e",
        "4. state at scale": "state",
        "5. sink": "sink",
    }.get(part, part)


def _num(value: float) -> str:
    if value != value:  # NaN
        return f"{'-':>10}"
    if abs(value) >= 100:
        return f"{value:>10,.0f}"
    return f"{value:>10.2f}"


def machine_info() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }


def commit() -> str:
    try:
        return subprocess.run(  # noqa: S603 - a fixed git command
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


if __name__ == "__main__":
    main()
