"""``python -m bench [options]``: run every scenario, write ``bench/results/latest.{json,md}``, print the summary."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench.report import markdown
from bench.scenarios import BASELINE_PROFILE, PROFILES, SCALING, Bench, Options, scenario_ids

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes (1,000 records, 100 write-backs, 2,000/10,000 "
                                                          "memory, baseline samples 100/50): a couple of minutes")
    p.add_argument("--records", type=int, help="purchase orders in scenarios 1-5 (default 10000)")
    p.add_argument("--changed-pct", type=float, help="percent changed in scenario 3 (default 1)")
    p.add_argument("--writebacks", type=int, help="Jira status changes in scenario 4 (default 1000)")
    p.add_argument("--webhook-transitions", type=int, help="transitions in scenario 5 (default 200)")
    p.add_argument("--webhook-rate", type=float, help="transitions per second in scenario 5 (default 5)")
    p.add_argument("--memory-sizes", help="small,large backfill sizes of scenario 6 (default 10000,100000)")
    p.add_argument("--memory-repeats", type=int, help="pairs of scenario 6 runs, reported as medians (default 3)")
    p.add_argument("--memory-lines", action="store_true", help="read PO lines in scenario 6 too (slow: see README)")
    p.add_argument("--latency-ms", type=float, help="injected latency per request, both simulators (default 50)")
    p.add_argument("--ifs-rpm", type=int, help="IFS requests per minute per client before 429 (default 1000; 0 off)")
    p.add_argument("--ifs-pace-rpm", type=float, help="connector's IFS pacing (default 950)")
    p.add_argument("--jira-burst", type=_burst, help='Jira burst limit per endpoint: "documented" (default: GET and '
                                                     'POST 100/s, PUT and DELETE 50/s), one number for every '
                                                     'method, or 0 (off)')
    p.add_argument("--jira-in-flight", type=int, help="Jira calls per endpoint the connector may keep in flight, for "
                                                      "the lower bounds (default 32, the engine's ceiling)")
    p.add_argument("--profiles", type=_profiles, help="latency profiles to run scenarios 1-5 under, comma-separated "
                                                      f"(default {','.join(PROFILES)})")
    p.add_argument("--only", type=_ids, help="run only these scenarios, comma-separated ids (e.g. 1,3); earlier "
                                             "scenarios whose state they need run unmeasured")
    p.add_argument("--scaling-workers", type=_counts, help="scaling scenario: worker processes per round, "
                                                           "comma-separated (default 1,2,4,8)")
    p.add_argument("--scaling-connections", type=int, help="scaling scenario: connections (default 6)")
    p.add_argument("--scaling-records", type=int, help="scaling scenario: purchase orders per connection (default 500)")
    p.add_argument("--scaling-concurrency", type=int, help="scaling scenario: jobs each worker runs at once "
                                                           "(default 1)")
    p.add_argument("--pg-dsn", default=os.environ.get("ML_CONNECTOR_BENCH_PG_DSN"),
                   help="scaling scenario: a scratch PostgreSQL database it empties (postgresql+psycopg://...; "
                        "default $ML_CONNECTOR_BENCH_PG_DSN)")
    p.add_argument("--jira-per-issue", type=float, help="Jira writes per issue per second (default 10; 0 off)")
    p.add_argument("--baseline-sample", type=int, help="baseline backfill sample (default 1000)")
    p.add_argument("--baseline-sample-incremental", type=int, help="baseline sample for scenarios 2-4 (default 200)")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline")
    p.add_argument("--no-memory", action="store_true", help="skip scenario 6")
    p.add_argument("--output", type=Path, default=RESULTS, help="directory for latest.json and latest.md")
    p.add_argument("--workdir", type=Path, help="keep configs, stores and logs here (default: a temp dir)")
    args = p.parse_args(argv)
    o = Options()
    if args.quick:
        o.records, o.writebacks, o.webhook_transitions, o.webhook_rate = 1_000, 100, 40, 10.0
        o.memory_sizes = (2_000, 10_000)
        o.memory_repeats = 1
        o.baseline_sample, o.baseline_sample_incremental = 100, 50
    for name in ("records", "changed_pct", "writebacks", "webhook_transitions", "webhook_rate", "latency_ms",
                 "ifs_rpm", "ifs_pace_rpm", "jira_burst", "jira_per_issue", "jira_in_flight", "baseline_sample",
                 "baseline_sample_incremental", "workdir", "profiles", "only", "scaling_workers",
                 "scaling_connections", "scaling_records", "scaling_concurrency", "pg_dsn", "memory_repeats"):
        value = getattr(args, name)
        if value is not None:
            setattr(o, name, value)
    if o.memory_repeats < 1:
        p.error("--memory-repeats must be 1 or more")
    if args.memory_sizes:
        small, large = (int(x) for x in args.memory_sizes.split(","))
        o.memory_sizes = (small, large)
    o.memory_lines = args.memory_lines
    o.baseline = not args.no_baseline
    o.memory = not args.no_memory
    known = scenario_ids()
    if o.only is not None and not o.only <= set(known):
        p.error(f"--only: unknown scenario id(s) {', '.join(sorted(o.only - set(known)))}; known: {', '.join(known)}")
    if o.only is not None and SCALING in o.only:
        if not o.pg_dsn:
            p.error(f"--only {SCALING} needs a scratch PostgreSQL database: --pg-dsn or ML_CONNECTOR_BENCH_PG_DSN")
        if "50ms" not in o.profiles:
            p.error(f"--only {SCALING} runs under the 50ms profile: add it to --profiles")
    o.writebacks = min(o.writebacks, o.records)
    o.webhook_transitions = min(o.webhook_transitions, max(0, o.records - o.writebacks))
    return o, args


def _burst(text: str) -> float | str:
    if text == "documented":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError('expected "documented" or a number') from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0: off)")
    return value


def _profiles(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    unknown = [n for n in names if n not in PROFILES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown profile(s) {unknown or text!r}; known: {', '.join(PROFILES)}")
    return names


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError("expected whole numbers, e.g. 1,2,4,8") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("expected numbers >= 1, e.g. 1,2,4,8")
    return counts


def _ids(text: str) -> frozenset[str]:
    ids = frozenset(x.strip() for x in text.split(",") if x.strip())
    if not ids:
        raise argparse.ArgumentTypeError("expected scenario ids, e.g. 1,3")
    return ids


def run(o: Options) -> dict[str, Any]:
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    bench = Bench(o, log=lambda msg: print(msg, flush=True))
    bench.start()
    try:
        bench.run_main()
        if o.memory:
            bench.run_memory()
        with_baseline = o.baseline and BASELINE_PROFILE in o.profiles and o.wanted("1", "2a", "2", "3", "4")
        baseline = bench.run_baseline() if with_baseline else {}
    finally:
        bench.stop()
    for r in bench.results.get(BASELINE_PROFILE, []):
        base = baseline.get(r["id"])
        if base:
            r["baseline"] = base
            r["vs_baseline_time"] = r["wall_s"] / base["wall_s"] if base["wall_s"] else None
            ours_calls = r["api_calls"]["total"]
            r["vs_baseline_calls"] = ours_calls / base["api_calls"]["total"] if base["api_calls"]["total"] else None
            if r["id"] == "1":
                speedup = base["wall_s"] / r["wall_s"] if r["wall_s"] else None
                r["speedup_vs_baseline"] = speedup
                r.setdefault("targets", []).append(
                    {"target": "≥ 20x faster than baseline", "value": speedup, "limit": 20, "at_most": False,
                     "met": None if speedup is None else speedup >= 20})
    return {
        "started_at": started_at,
        "total_s": time.perf_counter() - t0,
        "environment": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "options": {k: (str(v) if isinstance(v, Path) else sorted(v) if isinstance(v, frozenset) else v)
                    for k, v in vars(o).items() if k != "pg_dsn"},
        "pg_dsn": make_url(o.pg_dsn).render_as_string(hide_password=True) if o.pg_dsn else None,  # no password
        "workdir": str(bench.work),
        "baseline_profile": BASELINE_PROFILE if baseline else None,
        # scenarios 1-5 once per profile; each profile's limits (and so its lower bounds) in its own entry
        "profiles": {
            name: {"description": PROFILES[name].description, "limits": o.limits(PROFILES[name]).as_dict(),
                   "scenarios": bench.results.get(name, [])}
            for name in o.profiles if name in bench.results
        },
        "once": {
            "note": "scenario 6 runs once, not per profile: it measures memory and CPU with no latency, no limits "
                    f"and no server time, over {o.memory_repeats} pair(s) of backfills, reported as medians",
            "scenarios": bench.results.get("once", []),
        },
    }


def main(argv: list[str] | None = None) -> None:
    o, args = parse(argv if argv is not None else sys.argv[1:])
    # SIGTERM unwinds like Ctrl-C, so the simulator processes are stopped by ``Bench.stop``.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    data = run(o)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "latest.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    text = markdown(data)
    (args.output / "latest.md").write_text(text, encoding="utf-8")
    print()
    print(text.split("## Scenario details")[0])
    print(f"written: {args.output / 'latest.json'}, {args.output / 'latest.md'}")
