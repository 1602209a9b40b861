"""``latest.json`` and the Markdown table."""

from __future__ import annotations

from typing import Any


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list):
        return "[" + ", ".join(_f(v, digits) for v in value) + "]"
    return str(value)


def _endpoints(calls: dict[str, Any]) -> str:
    parts = []
    for system in ("ifs", "jira"):
        for endpoint, n in (calls.get(system, {}).get("by_endpoint") or {}).items():
            method, _, path = endpoint.partition(" ")
            short = path.rsplit("/", 1)[-1] if system == "ifs" else path.replace("/rest/api/3/", "")
            parts.append(f"{system} {method} {short}: {n:,}")
    return "<br>".join(parts) or "-"


def _limits_line(lim: dict[str, Any], pace: float) -> str:
    burst = lim["jira_burst_per_second_per_endpoint"]
    if isinstance(burst, dict):
        burst = ", ".join(f"{m} {v:g}/s" for m, v in burst.items())
    elif burst is not None:
        burst = f"{burst:g}/s"
    server = lim.get("server_time") or {}
    server_text = "; ".join(f"{op} {c['base_s']:g} s + {c['per_item_s']:g} s/item" for op, c in server.items())
    return (f"Limits: latency {lim['latency_ms']:g} ms per request (both simulators); IFS "
            f"{lim['ifs_rate_limit_per_minute']} requests/min per client; Jira burst per endpoint {burst or 'off'}, "
            f"{lim['jira_per_issue_writes_per_second']} writes/s per issue; connector paces IFS at {pace:g}/min; "
            f"in-flight Jira calls per endpoint for the bounds: {lim.get('jira_in_flight')}. Server time: "
            f"{server_text or 'none'}.")


_HEADER = [
    "| # | scenario | wall s | IFS calls | Jira calls | calls/record | 429s | peak RSS MB "
    "| lower bound s (binding) | efficiency | baseline wall s | ours ÷ baseline (time) | ours ÷ baseline (calls) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
]


def _row(r: dict[str, Any]) -> str:
    lb = r.get("lower_bound") or {}
    base = r.get("baseline") or {}
    bw = base.get("wall_s")
    b_label = f"{_f(bw)}⁽ˢ⁾ ({base['sample']:,}→{base['scaled_to']:,})" if base else "n/a"
    return (
        f"| {r['id']} | {r['name']} | {_f(r['wall_s'])} | {r['api_calls']['ifs']['calls']:,} | "
        f"{r['api_calls']['jira']['calls']:,} | {_f(r['calls_per_record']['total'], 3)} | "
        f"{r['http_429']['ifs'] + r['http_429']['jira']} | {_f(r['peak_rss_mb'], 0)} | "
        f"{_f(lb.get('seconds'))} ({lb.get('binding', '-')}) | {_f(r.get('efficiency'), 3)} | {b_label} | "
        f"{_f(r.get('vs_baseline_time'), 4)} | {_f(r.get('vs_baseline_calls'), 4)} |"
    )


def _details(r: dict[str, Any]) -> list[str]:
    lines = [f"### {r['id']}. {r['name']}" + (f" — profile {r['profile']}" if r.get("profile") != "once" else ""), ""]
    extra = {k: r[k] for k in ("latency_p50_s", "latency_p95_s", "latency_max_s", "written", "missing",
                               "repeats", "peak_rss_small_mb", "peak_rss_large_mb", "rss_ratio", "rss_ratio_runs",
                               "ms_per_record_small",
                               "ms_per_record_large", "cpu_s_small", "cpu_s_large", "cpu_ms_per_record_small",
                               "cpu_ms_per_record_large", "cpu_ms_per_record_large_runs", "calibration_unit_us_runs",
                               "cpu_units_per_record_large", "cpu_units_per_record_large_runs",
                               "jira_calls_per_new_record", "calls_per_flow",
                               "jira_calls_for_unchanged_records", "ifs_calls_per_write", "line_rows")
             if k in r}
    if extra:
        lines.append("- figures: " + ", ".join(f"{k} = {_f(v, 3)}" for k, v in extra.items()))
    cpu = r.get("cpu_s") or {}
    if cpu:
        lines.append("- CPU seconds during the run: " + ", ".join(f"{k} {_f(v)}" for k, v in cpu.items()))
    lines.append(f"- calls per endpoint: {_endpoints(r['api_calls'])}")
    lb = r.get("lower_bound")
    if lb and "fewest_calls" in lb:
        fc = lb["fewest_calls"]
        lines.append(f"- fewest calls: IFS {fc['ifs_total']} {fc['ifs']}; Jira {fc['jira_total']} {fc['jira']}; "
                     f"chain {len(lb['chain'])} calls; parts (s) "
                     + ", ".join(f"{k} {v:.2f}" for k, v in lb["parts"].items()))
    for t in r.get("targets", []):
        mark = {True: "met", False: "**missed**", None: "n/a"}[t["met"]]
        lines.append(f"- target {t['target']}: {_f(t['value'], 3)} → {mark}")
    if r.get("baseline", {}).get("note"):
        lines.append(f"- baseline: {r['baseline']['note']}")
    lines.append("")
    return lines


def _section(section: dict[str, Any], profile: str, limits: str) -> list[str]:
    """A scenario with a table of its own (e.g. the scaling rounds) under its own heading."""
    header = section["header"]
    return [
        f"## {section['title']} — profile {profile}", "", *(f"- {note}" for note in section["notes"]), "", limits, "",
        "| " + " | ".join(header) + " |", "|" + "---:|" * len(header),
        *("| " + " | ".join(_f(v) for v in row) + " |" for row in section["rows"]), "",
    ]


def markdown(data: dict[str, Any]) -> str:
    env = data["environment"]
    pace = data["options"]["ifs_pace_rpm"]
    lines = [
        "# ml-connector benchmark — latest run",
        "",
        f"Run {data['started_at']} on {env['cpus']} CPU(s), Python {env['python']}; total {data['total_s']:.0f} s.",
        "Efficiency = lower bound ÷ wall time (formula in bench/README.md). "
        + (f"Baseline = pycontribs `jira` script, per-record calls, run under the {data['baseline_profile']} profile "
           "only; figures marked ⁽ˢ⁾ come from a sample scaled to the full size."
           if data.get("baseline_profile") else "Baseline: not run."),
        "",
    ]
    for name, prof in data["profiles"].items():
        rows = [r for r in prof["scenarios"] if "section" not in r]
        if rows:
            lines += [f"## Profile {name}: {prof['description']}", "", _limits_line(prof["limits"], pace), "",
                      *_HEADER, *(_row(r) for r in rows), ""]
        for r in prof["scenarios"]:
            if "section" in r:
                lines += _section(r["section"], name, _limits_line(prof["limits"], pace))
    once = data["once"]
    if once["scenarios"]:
        lines += ["## Once, outside the profiles", "", f"{once['note'][0].upper()}{once['note'][1:]}.", "", *_HEADER]
        lines += [_row(r) for r in once["scenarios"]]
        lines.append("")
    lines += ["## Scenario details", ""]
    for prof in data["profiles"].values():
        for r in prof["scenarios"]:
            lines += _details(r)
    for r in once["scenarios"]:
        lines += _details(r)
    return "\n".join(lines) + "\n"
