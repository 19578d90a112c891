"""`python -m bench.pipeline`: how fast the pipeline is, next to a baseline from the same run.

1. decisions: the worker's per-message work without Kafka, against parsing the envelope;
2. end to end: webhooks over HTTP through the ingress, Kafka and the worker to the
   stand-in CDP, against the broker alone moving the same bytes.

Speed and memory targets live here rather than in timed unit tests, which flake on busy
machines. KAFKA_BOOTSTRAP_SERVERS names a broker to use; without it one is started."""

import argparse
import math
import time

from bench import decisions, e2e
from bench.broker import kafka_broker
from bench.webhooks import decision_mix, sources


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--webhooks", type=int, default=2000, help="posted end to end [2000]")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight [16]")
    parser.add_argument(
        "--decisions", type=int, default=5000, help="messages for the decisions part [5000]"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs, best kept [5]")
    parser.add_argument("--only", choices=("decisions", "e2e"), help="run one part")
    arguments = parser.parse_args(argv)
    if min(arguments.webhooks, arguments.concurrency, arguments.decisions, arguments.repeats) < 1:
        parser.error("counts must be positive")

    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", flush=True)

    tables: list[str] = []
    if arguments.only != "e2e":
        progress(f"decisions: {arguments.decisions} raw messages, best of {arguments.repeats}")
        values = decision_mix(arguments.decisions)
        found = decisions.measure(values, sources(), arguments.repeats, progress)
        tables.append(decision_table(found))
    if arguments.only != "decisions":
        progress("end to end: Kafka broker")
        with kafka_broker() as broker:
            measured = e2e.run(broker, arguments.webhooks, arguments.concurrency, progress)
            progress("end to end: done; stopping")
        tables.append(e2e_table(measured, broker.bootstrap, own=broker.pid is not None))
    progress("finished")
    print("\n" + "\n\n".join(tables), flush=True)


def decision_table(found: decisions.DecisionResults) -> str:
    outcomes = ", ".join(f"{count} {name}" for name, count in sorted(found.outcomes.items()))
    rows = [
        f"== decisions, no Kafka: {found.decisions.messages} messages ({outcomes})",
        f"{'':34}{'msg/s':>10}{'µs/msg':>10}{'peak KiB':>10}",
    ]

    def row(label: str, timing: decisions.Timing) -> str:
        peak = f"{timing.peak_bytes / 1024:,.0f}" if timing.peak_bytes is not None else "-"
        return f"{label:34}{timing.per_second:>10,.0f}{timing.micros:>10.1f}{peak:>10}"

    rows.append(row("baseline: json.loads + RawEnvelope", found.baseline))
    rows.append(row("decode + validate + track", found.decisions))
    rows += [row(f"  {stage.name}", stage) for stage in found.stages]
    ratio = found.decisions.micros / found.baseline.micros
    rows.append(f"decisions cost {ratio:.1f}x the baseline per message")
    return "\n".join(rows)


def e2e_table(found: e2e.E2EResults, bootstrap: str, own: bool) -> str:
    base, run = found.baseline, found.pipeline
    whose = "own broker" if own else "KAFKA_BOOTSTRAP_SERVERS"
    rows = [
        f"== end to end: {run.posted} webhooks, {found.concurrency} in flight, "
        f"{whose} {bootstrap}; worker ready {run.worker_start_s:.1f} s after start",
        f"{'':30}{'msg/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}  of broker",
    ]

    def row(label: str, rate: float, latency: e2e.Latencies, share: str = "") -> str:
        millis = "".join(_ms(value) for value in (latency.p50, latency.p95, latency.p99))
        shown = f"{'-':>9}" if math.isnan(rate) else f"{rate:>9,.0f}"
        return f"{label:30}{shown}{millis}  {share}".rstrip()

    none = e2e.Latencies(math.nan, math.nan, math.nan)
    rows += [
        row(f"broker: produce, {found.concurrency} in flight", base.produce_rate, base.produce_ms),
        row("broker: produce, 1 in flight", base.serial_rate, base.serial_ms),
        row("broker: produce -> consume", base.through_rate, base.through_ms),
        row("broker: consume only", base.consume_rate, none),
        row(
            f"ingress: 202 ({run.accepted}/{run.posted})",
            run.accept_rate,
            run.accept_ms,
            _share(run.accept_rate, base.produce_rate, "produce"),
        ),
        row("pipeline: one webhook at a time", math.nan, run.idle_ms),
        row(
            f"pipeline: post -> CDP ({run.delivered})",
            run.e2e_rate,
            run.e2e_ms,
            _share(run.e2e_rate, base.through_rate, "produce -> consume"),
        ),
        row(
            "worker: backlog after posts",
            run.drain_rate,
            none,
            _share(run.drain_rate, base.through_rate, "produce -> consume"),
        ),
        "broker rows: the same envelope bytes, the ingress's producer (idempotent, acks=all).\n"
        "latency: post -> 202 / post -> conversion at the CDP; 'one at a time' (no backlog) is\n"
        "mostly the CDP batch wait (CDP_BATCH_WAIT_S=0.3); 'backlog after posts' is the worker\n"
        "alone, once every post was answered.",
        "",
        f"{'process':30}{'peak RSS MiB':>14}{'CPU s in load':>15}{'CPU ms/webhook':>16}",
    ]
    for name, figures in run.processes.items():
        rows.append(
            f"{name:30}{figures.peak_rss_mib:>14.0f}{figures.cpu_s:>15.1f}"
            f"{figures.cpu_s / run.posted * 1000:>16.2f}"
        )
    if not math.isnan(base.broker_cpu_s):
        rows.append(
            f"{'broker, baseline produce->consume':44}{base.broker_cpu_s:>15.1f}"
            f"{base.broker_cpu_s / found.webhooks * 1000:>16.2f}"
        )
    return "\n".join(rows)


def _ms(value: float) -> str:
    return f"{'-':>9}" if math.isnan(value) else f"{value:>9.1f}"


def _share(value: float, of: float, what: str) -> str:
    return "" if math.isnan(value) else f"{value / of:.0%} of {what}"


if __name__ == "__main__":
    main()
