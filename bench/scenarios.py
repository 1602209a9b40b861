"""The scenarios: set up the world through the simulators' control APIs, run the connector (and the baseline) in
subprocesses, read the simulators' request logs, and compute figures, lower bounds and targets."""

from __future__ import annotations

import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx2

from bench import bounds, calibrate
from bench.config import write_config
from bench.runner import Child
from bench.scaling import Round, ScalingWorld
from bench.sims import JIRA_AUTH, WEBHOOK_SECRET, SimProcess, Traffic, combined
from ml_connector.sim.servertime import ServerTimeProfile


@dataclass
class Options:
    records: int = 10_000
    changed_pct: float = 1.0
    writebacks: int = 1_000
    webhook_transitions: int = 200
    webhook_rate: float = 5.0  # transitions per second
    memory_sizes: tuple[int, int] = (10_000, 100_000)
    memory_lines: bool = False
    memory_repeats: int = 3  # pairs of scenario 6 runs; its figures are their medians
    latency_ms: float = 50.0
    ifs_rpm: int = 1000
    ifs_pace_rpm: float = 950.0
    jira_burst: float | str = "documented"  # the Jira simulator's burst_per_second ("documented", a number; 0: off)
    jira_per_issue: float = 10.0
    # The most Jira calls per endpoint the connector may keep in flight (jira.http.max_in_flight, default 32, in
    # config/connections.py): the lower bounds' in-flight part. Follow the engine if its ceiling changes.
    jira_in_flight: int = 32
    baseline_sample: int = 1_000
    baseline_sample_incremental: int = 200
    baseline: bool = True
    memory: bool = True
    workdir: Path | None = None
    profiles: tuple[str, ...] = ("50ms", "realistic")
    only: frozenset[str] | None = None  # scenario ids to run (None: all but the opt-in ones)
    # The scaling scenario (opt-in: --only scaling): worker processes per round, connections, orders per connection,
    # jobs per worker at once, and the scratch PostgreSQL database it empties.
    scaling_workers: tuple[int, ...] = (1, 2, 4, 8)
    scaling_connections: int = 6
    scaling_records: int = 500
    scaling_concurrency: int = 1
    pg_dsn: str | None = None

    def limits(self, profile: Profile) -> bounds.Limits:
        return bounds.Limits(self.latency_ms / 1000, self.ifs_rpm or None, self.jira_burst or None,
                             self.jira_per_issue or None, self.jira_in_flight, profile.server_time)

    def wanted(self, *ids: str) -> bool:
        return self.only is None or bool(self.only & set(ids))

    def chosen(self, step: Step, profile: str) -> bool:
        """Whether ``step`` runs under ``profile``: an opt-in step only when ``--only`` names it."""
        if step.profiles is not None and profile not in step.profiles:
            return False
        if step.opt_in:
            return self.only is not None and bool(self.only & set(step.ids))
        return self.wanted(*step.ids)


@dataclass(frozen=True)
class Profile:
    """How the far side behaves: the network latency (``--latency-ms``, both profiles) plus modelled server time."""

    name: str
    server_time: ServerTimeProfile | None
    description: str


PROFILES = {
    "50ms": Profile("50ms", None, "network latency only, no server time"),
    "realistic": Profile("realistic", "realistic", "network latency + modelled server time"),
}
BASELINE_PROFILE = "50ms"  # the baseline is slow by design: it runs under one profile only
ONCE = ("6",)  # scenarios that run once, outside the profiles (no latency, no limits, no server time)


@dataclass
class MainWorld:
    """What the main scenarios (1-5) of one profile share: one seeded world, one connector store."""

    records: int
    line_rows: int
    config: Path
    linked: list[str] = field(default_factory=list)  # linked issue keys, once the write-back step has listed them


@dataclass(frozen=True)
class Step:
    """Main scenarios that run together, in order. ``setup`` steps also run, unmeasured and without latency, when
    only a later scenario is wanted (the later ones need their state: the backfill's store and issues)."""

    ids: tuple[str, ...]
    method: str  # the Bench method that runs them: (world, profile) -> None, calling Bench.record per scenario
    setup: bool = False
    own_world: bool = False  # builds its own world: needs neither the main world nor the set-up steps
    opt_in: bool = False  # too long for the default run: runs only when --only names it
    profiles: tuple[str, ...] | None = None  # the profiles it runs under (None: every one)


# The main scenarios in order. To add one: a Bench method that runs it and calls ``self.record(...)``, and a Step here
# at the place its state allows; its id is then valid for --only and it runs under every profile.
STEPS = [
    Step(("1",), "backfill", setup=True),
    Step(("2a", "2", "3"), "incremental"),
    Step(("4",), "writeback"),
    Step(("5",), "webhook_path"),
    Step(("1b",), "post_backfill", own_world=True),
    # Workers x connections on PostgreSQL (bench/scaling.py); minutes, and it needs a scratch database: opt-in.
    Step(("scaling",), "scaling", own_world=True, opt_in=True, profiles=("50ms",)),
]
SCALING = "scaling"


def scenario_ids() -> list[str]:
    return [sid for step in STEPS for sid in step.ids] + list(ONCE)


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _per_record_ms(seconds: float | None, records: int) -> float | None:
    return None if seconds is None or not records else 1000 * seconds / records


def _target(name: str, value: float | None, limit: float, *, at_most: bool = True) -> dict[str, Any]:
    met = None if value is None else (value <= limit if at_most else value >= limit)
    return {"target": name, "value": value, "limit": limit, "at_most": at_most, "met": met}


def _calls(ifs: Traffic, jira: Traffic, records: int) -> dict[str, Any]:
    total = ifs.calls + jira.calls
    throttled = ifs.throttled + jira.throttled
    return {
        "api_calls": {"ifs": ifs.summary(), "jira": jira.summary(), "total": total},
        "calls_per_record": {
            "ifs": ifs.calls / records if records else None,
            "jira": jira.calls / records if records else None,
            "total": total / records if records else None,
        },
        "http_429": {
            "ifs": ifs.throttled,
            "jira": jira.throttled,
            "share_of_calls": throttled / total if total else 0.0,
        },
    }


class Bench:
    def __init__(self, options: Options, log: Any = print) -> None:
        self.o = options
        self.say = log
        self.work = options.workdir or Path(tempfile.mkdtemp(prefix="mlc-bench-"))
        self.ifs = SimProcess("ifs", ["--purchase-orders", "0", "--work-orders", "0"])
        self.jira = SimProcess("jira")
        self.results: dict[str, list[dict[str, Any]]] = {}  # profile name (or "once") → scenario results
        self.bucket = "once"
        self.cpu_mark = (0.0, 0.0)
        self.sim_cpu: dict[str, float] = {}

    # -- world -----------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.ifs.start()
        self.jira.start()

    def stop(self) -> None:
        self.ifs.stop()
        self.jira.stop()

    def world(self, records: int, *, limited: bool, jira_offset: float = 0.0, profile: Profile | None = None) -> None:
        """Fresh data in both simulators, faults set, request logs cleared."""
        self.ifs.call("PUT", "faults", json={"latency_ms": 0, "rate_limit_per_minute": None,
                                             "server_time_profile": None})
        self.ifs.reset(purchase_orders=records, work_orders=0)
        self.jira.reset()
        self.jira.call("PUT", "clock", json={"offset_seconds": jira_offset})
        self.faults(limited=limited, profile=profile)
        self.clear()

    def faults(self, *, limited: bool, profile: Profile | None = None, sims: tuple[SimProcess, SimProcess] | None = None
               ) -> None:
        """The profile's latency, limits and server time (``limited``), or none of them (set-up and scenario 6), on
        ``sims`` (an IFS and a Jira simulator; default the main pair)."""
        o = self.o
        ifs, jira = sims or (self.ifs, self.jira)
        if limited:
            server = profile.server_time if profile else None
            ifs.faults(latency_ms=o.latency_ms, rate_limit_per_minute=o.ifs_rpm or None, server_time_profile=server)
            jira.faults(latency_ms=int(o.latency_ms), burst_per_second=o.jira_burst or None,
                        per_issue_writes_per_second=o.jira_per_issue or None, server_time_profile=server)
        else:
            ifs.faults(latency_ms=0, rate_limit_per_minute=None, server_time_profile=None)
            jira.faults(latency_ms=0, burst_per_second=None, per_issue_writes_per_second=None,
                        server_time_profile=None)

    def clear(self) -> None:
        self.ifs.clear_requests()
        self.jira.clear_requests()
        self.cpu_mark = (self.ifs.cpu_seconds(), self.jira.cpu_seconds())

    def traffic(self) -> tuple[Traffic, Traffic]:
        t = self.ifs.traffic(), self.jira.traffic()
        ifs0, jira0 = self.cpu_mark
        self.sim_cpu = {"ifs": self.ifs.cpu_seconds() - ifs0, "jira": self.jira.cpu_seconds() - jira0}
        self.clear()
        return t

    def line_rows(self) -> int:
        """How many PO line rows exist (for the fewest-calls count), read through IFS's own ``$count``."""
        with self.ifs_api() as http:
            return int(http.get(f"{bounds_path('PurchaseOrderLinePartSet')}/$count").raise_for_status().text.strip())

    def config(self, name: str, *, paced: bool = True, lines: bool = True) -> Path:
        directory = self.work / name
        if directory.exists():  # a store left by an earlier (interrupted) run would turn the backfill into a recovery
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        path = write_config(directory, ifs_url=self.ifs.url, jira_url=self.jira.url,
                            ifs_rpm=self.o.ifs_pace_rpm if paced else None)
        if not lines:
            # Scenario 6 without line reads (see README): the line-derived fields take values from the order itself
            # so every issue still carries the required GL Account / Cost Center and is really created.
            import yaml

            data = yaml.safe_load(path.read_text())
            flow = data["flows"][0]
            flow.pop("lines", None)
            flow["mapping"]["custom_fields"].update({
                "GL Account": "GL-{{ Contract }}",
                "Cost Center:text": "{{ Contract }}",
                "Cost Center:select": {"source": "Contract", "map": {}, "default": "CC-100"},
            })
            path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def worker(self, config: Path, phases: list[dict[str, Any]], name: str) -> Child:
        return Child("bench.worker", {"config": str(config), "phases": phases}, self.work / f"{name}.log")

    def issues(self, project: str) -> list[dict[str, Any]]:
        data = self.jira.call("GET", "issues", params={"project": project})
        issues: list[dict[str, Any]] = data["issues"]
        return issues

    def linked_issue_keys(self) -> list[str]:
        keys = [i["key"] for p in ("PROC", "CAPEX") for i in self.issues(p)]
        return sorted(keys, key=lambda k: (k.split("-")[0], int(k.split("-")[1])))

    def transition(self, key: str, status: str = "In Progress") -> None:
        self.jira.call("POST", f"issues/{key}/transition", json={"status": status})

    # -- scenarios -------------------------------------------------------------------------------------------------

    def record(self, result: dict[str, Any]) -> None:
        if not self.o.wanted(result["id"]):
            return
        result["profile"] = self.bucket
        self.results.setdefault(self.bucket, []).append(result)
        eff = result.get("efficiency")
        self.say(f"  [{self.bucket}] {result['id']:>3} {result['name']}: {result['wall_s']:.2f} s"
                 + (f", efficiency {eff:.2f}" if eff is not None else "")
                 + f", calls ifs={result['api_calls']['ifs']['calls']} jira={result['api_calls']['jira']['calls']}"
                 + f", 429s={result['http_429']['ifs'] + result['http_429']['jira']}"
                 + f", peak RSS {result['peak_rss_mb']:.0f} MB")

    def scored(self, sid: str, name: str, run: dict[str, Any], ifs: Traffic, jira: Traffic, records: int,
               bound: bounds.LowerBound | None, **extra: Any) -> dict[str, Any]:
        limits = self.o.limits(PROFILES.get(self.bucket, PROFILES["50ms"]))
        result: dict[str, Any] = {"id": sid, "name": name, "records": records, "wall_s": run["seconds"],
                                  "run_counts": run.get("counts"), "run_status": run.get("status"),
                                  "peak_rss_mb": run["peak_rss_mb"], "client_view": run.get("client"),
                                  "cpu_s": {"connector": run.get("cpu_s"), "ifs_sim": self.sim_cpu.get("ifs"),
                                            "jira_sim": self.sim_cpu.get("jira")}}
        result.update(_calls(ifs, jira, records))
        if bound is not None:
            lb = bound.as_dict(limits)
            result["lower_bound"] = lb
            result["efficiency"] = lb["seconds"] / run["seconds"] if run["seconds"] > 0 else None
        result.update(extra)
        return result

    def run_main(self) -> None:
        """Scenarios 1-5 once per profile, each profile in a fresh world."""
        for name in self.o.profiles:
            self.run_profile(PROFILES[name])

    def run_profile(self, profile: Profile) -> None:
        o = self.o
        steps = STEPS
        wanted = [i for i, step in enumerate(steps) if o.chosen(step, profile.name)]
        if not wanted:
            return
        self.bucket = profile.name
        if all(steps[i].own_world for i in wanted):
            for i in wanted:
                getattr(self, steps[i].method)(None, profile)
            return
        n = o.records
        # The backfill happened "yesterday" as far as Jira's clock goes: the first write-back poll then sees only the
        # issues moved since the connector started, as in steady state (see README, "Method").
        self.say(f"profile {profile.name} ({profile.description}); world: {n} purchase orders, latency "
                 f"{o.latency_ms} ms, IFS {o.ifs_rpm}/min, Jira burst {o.jira_burst} per endpoint, per-issue "
                 f"{o.jira_per_issue}/s")
        self.world(n, limited=False, jira_offset=-86_400)
        world = MainWorld(n, self.line_rows(), self.config(f"main-{profile.name}"))
        for i, step in enumerate(steps[: wanted[-1] + 1]):
            if i in wanted:
                self.faults(limited=True, profile=profile)
                self.clear()
                getattr(self, step.method)(world, profile)
            elif step.setup and any(not steps[j].own_world for j in wanted if j > i):
                self.say(f"  (set-up for later scenarios: scenario {', '.join(step.ids)} unmeasured, no latency)")
                self.faults(limited=False)
                getattr(self, step.method)(world, profile)
                self.traffic()

    def backfill(self, world: MainWorld, profile: Profile) -> None:
        n, lines = world.records, world.line_rows
        w = self.worker(world.config, [{"kind": "outbound", "name": "backfill"}], f"s1-backfill-{profile.name}")
        run = w.result()
        w.close()
        ifs, jira = self.traffic()
        assignees = jira.counts.get("GET /rest/api/3/user/search", 0)
        created = (run.get("counts") or {}).get("created", 0)
        res = self.scored("1", f"Backfill {n:,} POs (empty store)", run, ifs, jira, n,
                          bounds.backfill(n, lines, assignees), line_rows=lines)
        res["jira_calls_per_new_record"] = jira.calls / created if created else None
        res["targets"] = [
            _target("efficiency ≥ 0.8", res["efficiency"], 0.8, at_most=False),
            _target("Jira calls per new record ≤ 0.05", res["jira_calls_per_new_record"], 0.05),
            _target("429s ≤ 1% of calls", res["http_429"]["share_of_calls"], 0.01),
        ]
        self.record(res)

    def incremental(self, world: MainWorld, profile: Profile) -> None:
        """2a (one-shot process, cold caches), 2 (warm, daemon-like) and 3 (1% changed), in one process."""
        o, n = self.o, world.records
        w = self.worker(world.config, [{"kind": "outbound", "name": "idle-cold"},
                                       {"kind": "outbound", "name": "idle-warm"},
                                       {"kind": "outbound", "name": "changed"}], f"s2-s3-incremental-{profile.name}")
        run = w.result()
        ifs, jira = self.traffic()
        res = self.scored("2a", f"Idle run over {n:,} linked (new process, cold caches)", run, ifs, jira, n,
                          bounds.idle(warm=False))
        res["calls_per_flow"] = ifs.calls + jira.calls
        res["targets"] = [_target("API calls per flow ≤ 2", res["calls_per_flow"], 2),
                          _target("429s ≤ 1% of calls", res["http_429"]["share_of_calls"], 0.01)]
        self.record(res)
        w.go()
        run = w.result()
        ifs, jira = self.traffic()
        res = self.scored("2", f"Idle run over {n:,} linked (daemon, warm caches)", run, ifs, jira, n,
                          bounds.idle(warm=True))
        res["calls_per_flow"] = ifs.calls + jira.calls
        res["targets"] = [_target("API calls per flow ≤ 2", res["calls_per_flow"], 2),
                          _target("429s ≤ 1% of calls", res["http_429"]["share_of_calls"], 0.01)]
        self.record(res)

        changed = max(1, round(n * o.changed_pct / 100))
        keys = self.po_keys(n)
        edited = keys[:: max(1, len(keys) // changed)][:changed]
        self.ifs.call("POST", "records/PurchaseOrder/bulk-edit",
                      json={"keys": edited, "changes": {"Description": "Edited for the benchmark"}})
        self.clear()
        w.go()
        run = w.result()
        w.close()
        ifs, jira = self.traffic()
        res = self.scored("3", f"Incremental, {changed:,} of {n:,} changed ({o.changed_pct:g}%)", run, ifs, jira,
                          changed, bounds.incremental(changed, warm=True))
        writes = {k: v for k, v in jira.counts.items() if k.split()[0] in ("POST", "PUT", "DELETE")
                  and "/search" not in k}
        res["jira_writes"] = writes
        res["jira_calls_for_unchanged_records"] = sum(writes.values()) - changed
        res["targets"] = [
            _target("Jira calls only for changed records (writes beyond the changed)",
                    res["jira_calls_for_unchanged_records"], 0),
            _target("Jira calls total ≤ changed records", jira.calls, changed),
            _target("429s ≤ 1% of calls", res["http_429"]["share_of_calls"], 0.01),
        ]
        self.record(res)

    def linked_now(self, world: MainWorld) -> list[str]:
        """The linked issues, listed once per world, with Jira's clock back at the present."""
        if not world.linked:
            self.jira.call("PUT", "clock", json={"offset_seconds": 0})
            world.linked = self.linked_issue_keys()
            self.clear()
        return world.linked

    def writeback(self, world: MainWorld, profile: Profile) -> None:
        """4. write-back of N Jira status changes, in a new process."""
        moved = self.linked_now(world)[: self.o.writebacks]
        for key in moved:
            self.transition(key)
        self.clear()
        w = self.worker(world.config, [{"kind": "writeback", "name": "writeback"}], f"s4-writeback-{profile.name}")
        run = w.result()
        w.close()
        ifs, jira = self.traffic()
        res = self.scored("4", f"Write-back of {len(moved):,} Jira status changes", run, ifs, jira, len(moved),
                          bounds.writeback(len(moved)))
        patches = sum(v for k, v in ifs.counts.items() if k.startswith("PATCH "))
        res["ifs_writes"] = patches
        res["ifs_calls_per_write"] = ifs.calls / patches if patches else None
        res["targets"] = [_target("efficiency ≥ 0.8", res["efficiency"], 0.8, at_most=False),
                          _target("429s ≤ 1% of calls", res["http_429"]["share_of_calls"], 0.01)]
        self.record(res)

    def webhook_path(self, world: MainWorld, profile: Profile) -> None:
        """5. webhook path, on issues scenario 4 did not move."""
        o = self.o
        linked = self.linked_now(world)
        self.record(self.webhook(world.config, linked[o.writebacks: o.writebacks + o.webhook_transitions],
                                 f"s5-webhook-{profile.name}"))

    def post_backfill(self, world: MainWorld, profile: Profile) -> None:
        """Scenario 1b (issue 14, item 5): a backfill, then one write-back run while nobody has moved anything.

        Its own world: scenario 1's Jira clock is set back a day, which would hide the cost. Here every issue the
        backfill created is "updated" inside the poll's look-back window: the poll must not page through them all
        (``n / 100`` search pages)."""
        n = self.o.records
        self.say(f"post-backfill poll: backfill of {n:,} POs, then one write-back run")
        self.world(n, limited=False)
        self.faults(limited=True, profile=profile)
        config = self.config(f"post-backfill-{profile.name}")
        phases = [{"kind": "outbound", "name": "backfill"}, {"kind": "writeback", "name": "post-backfill-poll"}]
        w = self.worker(config, phases, f"s1b-post-backfill-{profile.name}")
        created = (w.result().get("counts") or {}).get("created", 0)  # scored as scenario 1, not here
        self.clear()
        w.go()
        run = w.result()
        w.close()
        ifs, jira = self.traffic()
        flows = 1  # bench.config writes one flow
        # The account's time zone (GET /myself, for the JQL bound) is read once per process and cached: a daemon
        # pays it once, not per flow or per poll. It is reported apart.
        once = jira.counts.get("GET /rest/api/3/myself", 0)
        res = self.scored("1b", f"Post-backfill write-back poll ({created:,} new issues, nobody moved one)", run,
                          ifs, jira, created, None)
        res["jira_calls_once_per_process"] = once
        res["jira_calls_per_flow"] = (jira.calls - once) / flows
        res["search_pages_of_the_whole_window"] = -(-created // 100)
        res["targets"] = [_target("Jira calls per flow ≤ 2", res["jira_calls_per_flow"], 2),
                          _target("429s ≤ 0.1% of calls", res["http_429"]["share_of_calls"], 0.001)]
        self.record(res)

    def scaling(self, world: MainWorld | None, profile: Profile) -> None:
        """Records/s and connector CPU per record for 1, 2, 4, 8 ``ml-connector worker`` processes: each round a
        backfill of every connection, one job per connection, on PostgreSQL (bench/scaling.py)."""
        o = self.o
        assert o.pg_dsn, "bench.cli refuses --only scaling without --pg-dsn"
        per_round = o.scaling_connections * o.scaling_records
        self.say(f"scaling: {o.scaling_connections} connections x {o.scaling_records:,} POs, workers "
                 f"{', '.join(map(str, o.scaling_workers))} (each --concurrency {o.scaling_concurrency})")
        scale = ScalingWorld(self.work, o.pg_dsn, o.scaling_connections)
        rounds: list[dict[str, Any]] = []
        traffic: list[tuple[Traffic, Traffic]] = []
        try:
            scale.start(o.ifs_pace_rpm)
            for workers in o.scaling_workers:
                scale.empty_store()
                scale.reseed(o.scaling_records)
                for pair in scale.pairs:
                    self.faults(limited=True, profile=profile, sims=(pair.ifs, pair.jira))
                load, sim_cpu0 = os.getloadavg()[0], scale.clear()
                done = scale.run_round(workers, o.scaling_concurrency)
                sim_cpu = {k: v - sim_cpu0[k] for k, v in scale.sim_cpu().items()}
                traffic.append(scale.traffic())
                rounds.append(_scaling_round(done, *traffic[-1], sim_cpu, per_round, load))
                self.say(f"  [{self.bucket}] scaling, {workers} worker(s): {done.seconds:.2f} s, "
                         f"{rounds[-1]['records_per_s']:.0f} records/s, {rounds[-1]['cpu_ms_per_record']:.2f} "
                         f"CPU ms/record")
        finally:
            scale.stop()
        ifs, jira = combined([t[0] for t in traffic]), combined([t[1] for t in traffic])
        self.record(_scaling_result(o, rounds, ifs, jira, per_round))

    def po_keys(self, n: int) -> list[str]:
        """Every order key, read through the IFS API (before the request log is cleared, so it is not counted)."""
        keys: list[str] = []
        with self.ifs_api() as http:
            url: str | None = f"{bounds_path('PurchaseOrderSet')}?$select=OrderNo&$orderby=OrderNo"
            while url:
                body = http.get(url, headers={"Prefer": "odata.maxpagesize=4999"}).raise_for_status().json()
                keys.extend(str(r["OrderNo"]) for r in body["value"])
                url = body.get("@odata.nextLink")
        assert len(keys) == n, f"expected {n} orders, IFS listed {len(keys)}"
        return sorted(keys)

    @contextmanager
    def ifs_api(self) -> Iterator[httpx2.Client]:
        with httpx2.Client(base_url=self.ifs.url, timeout=120) as http:
            token = http.post("/auth/realms/mlc/protocol/openid-connect/token", data={
                "grant_type": "client_credentials", "client_id": "ml-connector", "client_secret": "sim-secret"})
            http.headers["Authorization"] = f"Bearer {token.raise_for_status().json()['access_token']}"
            yield http

    def webhook(self, config: Path, keys: list[str], log_name: str) -> dict[str, Any]:
        o = self.o
        w = self.worker(config, [{"kind": "serve", "name": "webhook"}], log_name)
        serving = w.result()
        with httpx2.Client(base_url=self.jira.url, auth=JIRA_AUTH, timeout=60) as http:
            r = http.post("/rest/webhooks/1.0/webhook", json={
                "name": "ml-connector bench", "url": f"{serving['url']}/webhooks/jira",
                "events": ["jira:issue_updated"], "secret": WEBHOOK_SECRET})
            r.raise_for_status()
            hook_id = r.json().get("self", "").rsplit("/", 1)[-1]
        self.clear()
        sent: dict[str, datetime] = {}
        started = time.perf_counter()
        gap = 1.0 / o.webhook_rate if o.webhook_rate > 0 else 0.0
        for i, key in enumerate(keys):
            due = started + i * gap
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            ifs_key = self.ifs_key_of(key)
            sent[ifs_key] = datetime.now(UTC)
            self.transition(key)
        deadline = time.monotonic() + 120
        patched: dict[str, datetime] = {}
        while time.monotonic() < deadline:
            data = self.ifs.call("GET", "requests")
            patched = {}
            for entry in data.get("requests") or []:
                if entry["method"] == "PATCH" and entry.get("status") in (200, 204):
                    key = _key_from_path(entry["path"])
                    stamp = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
                    patched.setdefault(key, stamp)
            if len(patched.keys() & sent.keys()) >= len(sent):
                break
            time.sleep(0.5)
        wall = time.perf_counter() - started
        w.go("stop")
        run = w.result()
        w.close()
        ifs, jira = self.traffic()
        if hook_id.isdigit():  # after reading the logs: the bench's own clean-up is not the connector's traffic
            with httpx2.Client(base_url=self.jira.url, auth=JIRA_AUTH, timeout=60) as http:
                http.delete(f"/rest/webhooks/1.0/webhook/{hook_id}")
            self.clear()
        latencies = sorted((patched[k] - sent[k]).total_seconds() for k in sent if k in patched)
        run = {**run, "seconds": wall}
        res = self.scored("5", f"Webhook path: {len(keys)} transitions at {o.webhook_rate:g}/s", run, ifs, jira,
                          len(keys), None)
        limits = o.limits(PROFILES[self.bucket])
        lb = bounds.webhook_latency().parts(limits)["chain_s"]  # a latency, not a throughput bound
        p50 = statistics.median(latencies) if latencies else None
        p95 = latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)] if latencies else None
        res.update(
            written=len(latencies), missing=len(sent) - len(latencies),
            latency_p50_s=p50, latency_p95_s=p95, latency_max_s=latencies[-1] if latencies else None,
            lower_bound={"seconds": lb, "binding": "chain_s",
                         "chain": [c.what for c in bounds.webhook_latency().chain],
                         "note": "per event: one IFS round trip (ETag read) before the PATCH arrives"},
            efficiency=_ratio(lb, p50),
            targets=[_target("every transition written", len(sent) - len(latencies), 0),
                     _target("429s ≤ 1% of calls", res["http_429"]["share_of_calls"], 0.01)],
        )
        return res

    def ifs_key_of(self, jira_key: str) -> str:
        issue = self.jira.call("GET", f"issues/{jira_key}")
        return str(issue["properties"]["ml-connector"]["key"])

    # -- memory ----------------------------------------------------------------------------------------------------

    def run_memory(self) -> None:
        if not self.o.wanted("6"):
            return
        self.bucket = "once"
        small, large = self.o.memory_sizes
        pairs = [self.memory_pair(small, large, n) for n in range(1, self.o.memory_repeats + 1)]
        # One pair's figures move by up to 10% between runs of the same code on one host: each figure is the median
        # of the pairs (every pair's value is kept beside it), the calls those of the pair with the median ratio.
        ratios = [b["peak_rss_mb"] / a["peak_rss_mb"] for a, b in pairs]
        a, b = pairs[ratios.index(statistics.median_low(ratios))]
        ifs, jira = b.pop("traffic")
        a_ifs, a_jira = a.pop("traffic")
        self.sim_cpu = b["sim_cpu"]  # the simulators' CPU during that pair's large run
        ratio = statistics.median(ratios)
        res = self.scored("6", f"Memory: backfill {large:,} vs {small:,} (no latency, no limits)", b, ifs, jira,
                          large, None)
        # The connector's CPU per record of each run on its own (``cpu_s`` of the table is the large run's alone).
        cpu_small = [_per_record_ms(x.get("cpu_s"), small) for x, _ in pairs]
        cpu_large = [_per_record_ms(y.get("cpu_s"), large) for _, y in pairs]
        # The same in units of the host's speed at the time: comparable across hosts and hours (``bench/calibrate``).
        units = [1000 * y["unit_ms"] for _, y in pairs]  # in microseconds
        cpu_units = [None if ms is None else 1000 * ms / unit for ms, unit in zip(cpu_large, units, strict=True)]
        res.update(
            repeats=len(pairs), peak_rss_small_mb=statistics.median(x["peak_rss_mb"] for x, _ in pairs),
            peak_rss_large_mb=statistics.median(y["peak_rss_mb"] for _, y in pairs), rss_ratio=ratio,
            rss_ratio_runs=ratios, wall_s_small=a["seconds"], ms_per_record_small=1000 * a["seconds"] / small,
            ms_per_record_large=1000 * b["seconds"] / large, cpu_s_small=a.get("cpu_s"), cpu_s_large=b.get("cpu_s"),
            cpu_ms_per_record_small=_median(cpu_small), cpu_ms_per_record_large=_median(cpu_large),
            cpu_ms_per_record_large_runs=cpu_large, calibration_unit_us_runs=units,
            cpu_units_per_record_large=_median(cpu_units), cpu_units_per_record_large_runs=cpu_units,
            lines_read=self.o.memory_lines,
            small_calls=_calls(a_ifs, a_jira, small),
            targets=[_target("peak RSS large ÷ small ≤ 1.1", ratio, 1.1),
                     _target("peak RSS large < 300 MB", max(y["peak_rss_mb"] for _, y in pairs), 300),
                     _target(f"connector CPU per record ({large:,} run) ≤ 0.25 ms", _median(cpu_large), 0.25)],
        )
        self.record(res)

    def memory_pair(self, small: int, large: int, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """A backfill of ``small`` and one of ``large`` records, each into a fresh store and freshly seeded
        simulators; each run's result carries its traffic."""
        runs: list[dict[str, Any]] = []
        unit = calibrate.unit_ms()  # the host's speed just before the pair (``bench/calibrate.py``)
        for size in (small, large):
            self.say(f"memory: backfill of {size:,} (latency 0, no rate limits), pair {n} of {self.o.memory_repeats}")
            self.world(size, limited=False)
            config = self.config(f"memory-{size}-{n}", paced=False, lines=self.o.memory_lines)
            w = self.worker(config, [{"kind": "outbound", "name": f"memory-{size}"}], f"s6-memory-{size}-{n}")
            run = w.result()
            w.close()
            run["traffic"] = self.traffic()
            run["sim_cpu"] = self.sim_cpu
            run["unit_ms"] = unit
            runs.append(run)
        return runs[0], runs[1]

    # -- baseline --------------------------------------------------------------------------------------------------

    def baseline_run(self, mode: str, sample: int, name: str) -> tuple[dict[str, Any], Traffic, Traffic]:
        child = Child("bench.baseline", {"mode": mode, "sample": sample, "ifs_url": self.ifs.url,
                                          "jira_url": self.jira.url}, self.work / f"baseline-{name}.log")
        run = child.result()
        child.close()
        ifs, jira = self.traffic()
        return run, ifs, jira

    def scale(self, run: dict[str, Any], ifs: Traffic, jira: Traffic, sample: int, full: int) -> dict[str, Any]:
        """Per-record figures of the sample scaled to ``full`` records. The scaled time is never below what the IFS
        budget allows for the scaled number of IFS calls (a small sample can fit in one minute's budget)."""
        factor = full / sample if sample else 0.0
        ifs_calls, jira_calls = ifs.calls * factor, jira.calls * factor
        floor = ifs_calls / (self.o.ifs_rpm / 60) if self.o.ifs_rpm else 0.0
        return {
            "sample": sample, "scaled_to": full, "scale_factor": factor,
            "sample_wall_s": run["seconds"], "wall_s": max(run["seconds"] * factor, floor),
            "rate_floor_s": floor,
            "api_calls": {"ifs": ifs_calls, "jira": jira_calls, "total": ifs_calls + jira_calls,
                          "sample": {"ifs": ifs.summary(), "jira": jira.summary()}},
            "calls_per_record": {"ifs": ifs.calls / sample, "jira": jira.calls / sample,
                                 "total": (ifs.calls + jira.calls) / sample},
            "http_429": {"ifs": ifs.throttled, "jira": jira.throttled},
            "peak_rss_mb": run["peak_rss_mb"], "counts": run["counts"],
        }

    def run_baseline(self) -> dict[str, dict[str, Any]]:
        o = self.o
        n, big, small = o.records, min(o.baseline_sample, o.records), min(o.baseline_sample_incremental, o.records)
        self.say(f"baseline (pycontribs jira, per-record calls, profile {BASELINE_PROFILE}): backfill sample {big}, "
                 f"incremental samples {small}")
        self.world(n, limited=True, profile=PROFILES[BASELINE_PROFILE])
        out: dict[str, dict[str, Any]] = {}
        run, ifs, jira = self.baseline_run("backfill", big, "backfill")
        out["1"] = self.scale(run, ifs, jira, big, n)
        self.say(f"  baseline 1: {run['seconds']:.1f} s for {big} → {out['1']['wall_s']:.0f} s scaled")
        run, ifs, jira = self.baseline_run("incremental", small, "idle")
        out["2"] = self.scale(run, ifs, jira, small, n)
        out["2a"] = out["2"]
        self.say(f"  baseline 2: {run['seconds']:.1f} s for {small} → {out['2']['wall_s']:.0f} s scaled")
        keys = sorted(self.po_keys(n))[:small]
        changed = max(1, round(small * o.changed_pct / 100))
        self.ifs.call("POST", "records/PurchaseOrder/bulk-edit",
                      json={"keys": keys[:changed], "changes": {"Description": "Edited for the benchmark"}})
        self.clear()
        run, ifs, jira = self.baseline_run("incremental", small, "changed")
        # Scenario 3's work is "changed" records but the naive script must still visit every record to find them.
        out["3"] = self.scale(run, ifs, jira, small, n)
        out["3"]["note"] = f"visits all {small} sampled records to find the {changed} changed; scaled to {n:,}"
        self.say(f"  baseline 3: {run['seconds']:.1f} s for {small} → {out['3']['wall_s']:.0f} s scaled")
        moved = [i["key"] for i in self.issues("PROC") + self.issues("CAPEX")][:small]
        for key in moved:
            self.transition(key)
        self.clear()
        run, ifs, jira = self.baseline_run("writeback", len(moved), "writeback")
        out["4"] = self.scale(run, ifs, jira, len(moved), o.writebacks)
        self.say(f"  baseline 4: {run['seconds']:.1f} s for {len(moved)} → {out['4']['wall_s']:.0f} s scaled")
        return out


def _scaling_round(done: Round, ifs: Traffic, jira: Traffic, sim_cpu: dict[str, float], expected: int,
                   load: float) -> dict[str, Any]:
    duplicates = sum(n - 1 for keys in done.issues.values() for n in keys.values() if n > 1)
    issued = sum(len(keys) for keys in done.issues.values())
    return {
        "workers": done.workers, "wall_s": done.seconds, "records": done.created, "jobs": done.jobs,
        "records_per_s": done.created / done.seconds if done.seconds > 0 else None,
        "cpu_s": done.cpu_s, "cpu_ms_per_record": 1000 * done.cpu_s / done.created if done.created else None,
        "startup_cpu_s": done.startup_cpu_s, "sim_cpu_s": sim_cpu, "peak_rss_mb": done.peak_rss_mb,
        "runs": dict(done.runs), "duplicates": duplicates, "missing": expected - issued,
        "load_avg_1m_before": load, **_calls(ifs, jira, done.created),
    }


def _scaling_result(o: Options, rounds: list[dict[str, Any]], ifs: Traffic, jira: Traffic,
                    per_round: int) -> dict[str, Any]:
    base = rounds[0]["records_per_s"] if rounds else None
    for r in rounds:
        r["speedup_vs_first"] = _ratio(r["records_per_s"], base)
    total = sum(r["records"] for r in rounds)
    wrong = sum(r["duplicates"] + r["missing"] for r in rounds)
    result: dict[str, Any] = {
        "id": SCALING, "records": total, "wall_s": sum(r["wall_s"] for r in rounds),
        "name": f"Scaling: {o.scaling_connections} connections x {o.scaling_records:,} POs, "
                f"{'/'.join(map(str, o.scaling_workers))} workers",
        "peak_rss_mb": max((r["peak_rss_mb"] for r in rounds), default=0.0), "rounds": rounds,
        "cpu_s": {"connector": sum(r["cpu_s"] for r in rounds),
                  "ifs_sim": sum(r["sim_cpu_s"]["ifs"] for r in rounds),
                  "jira_sim": sum(r["sim_cpu_s"]["jira"] for r in rounds)},
        "setup": {"connections": o.scaling_connections, "records_per_connection": o.scaling_records,
                  "worker_concurrency": o.scaling_concurrency, "simulators": "one IFS and one Jira process per "
                  "connection (a simulator process serves one tenant or site)", "runner": "procrastinate",
                  "store": "PostgreSQL (local)", "records_per_round": per_round},
        "targets": [_target("every order in exactly one issue, every round (duplicates + missing)", wrong, 0)],
        "section": _scaling_section(o, rounds),
    }
    result.update(_calls(ifs, jira, total))
    result["targets"].append(_target("429s ≤ 1% of calls", result["http_429"]["share_of_calls"], 0.01))
    return result


def _scaling_section(o: Options, rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The scenario's own table in latest.md (bench.report renders ``section`` results apart)."""
    header = ["workers", "wall s", "records", "records/s", "speed-up vs first row", "connector CPU s", "CPU ms/record",
              "worker start-up CPU s", "sim CPU s (IFS + Jira)", "largest worker peak RSS MB", "IFS calls",
              "Jira calls", "429s", "duplicates", "missing", "load avg (1 min) before"]
    rows = [[r["workers"], r["wall_s"], r["records"], r["records_per_s"], r["speedup_vs_first"], r["cpu_s"],
             r["cpu_ms_per_record"], r["startup_cpu_s"], r["sim_cpu_s"]["ifs"] + r["sim_cpu_s"]["jira"],
             r["peak_rss_mb"], r["api_calls"]["ifs"]["calls"], r["api_calls"]["jira"]["calls"],
             r["http_429"]["ifs"] + r["http_429"]["jira"], r["duplicates"], r["missing"], r["load_avg_1m_before"]]
            for r in rounds]
    notes = [
        f"{o.scaling_connections} connections, each its own IFS and Jira simulator process (a simulator serves one "
        f"tenant or site), {o.scaling_records:,} purchase orders each; one PostgreSQL store, runner procrastinate; "
        f"every `ml-connector worker` runs --concurrency {o.scaling_concurrency}. A round = a backfill of every "
        "connection: one flow job per connection (outbound, then the write-back poll), deferred at once.",
        "Wall s: deferral to the last run's end (worker start-up excluded). Connector CPU: the workers' user + "
        "system CPU from their registration to the end, summed (first-job work such as opening the store and Jira "
        "metadata included; start-up apart). One flow job per connection, so at most "
        f"{o.scaling_connections} jobs run at once whatever the workers: with W job slots (workers x concurrency) "
        f"a round runs its {o.scaling_connections} jobs in ⌈{o.scaling_connections}/W⌉ waves.",
        "All processes (simulators, workers, PostgreSQL) share this host's CPUs with whatever else runs on it: the "
        "load average before each round is reported.",
    ]
    return {"title": "Scaling: worker processes over connections", "header": header, "rows": rows, "notes": notes}


def bounds_path(entity: str) -> str:
    return f"/main/ifsapplications/projection/v1/PurchaseOrderHandling.svc/{entity}"


def _key_from_path(path: str) -> str:
    inner = path.split("PurchaseOrderSet(", 1)[1].rsplit(")", 1)[0]
    value = unquote(inner.split("=", 1)[1])
    return value[1:-1].replace("''", "'")
