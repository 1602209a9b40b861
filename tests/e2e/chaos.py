"""The chaos matrix (issue 9, "Done means"): every endpoint the connector calls x every fault kind.

A cell: both simulators (own processes, shared by a lane, reset through their control APIs) and a fresh store; a
baseline sync (in this process, to save a process start); then work that uses the endpoint (new purchase orders to
create, edited records to update, Jira issues moved to write back, one of them through a bound action); then
``ml-connector sync`` with the fault on, which must

* meet the fault (a cell whose endpoint that sync never called proves nothing, so it fails);
* exit 0 only if everything converged, 1 if not, or a documented systemic code where the fault is one: AUTH (3) for
  401/403, AUTH or UNAVAILABLE (4) on the IFS token endpoint (without a token nothing can be called);
* print no traceback and lose nothing: every record the store holds is synced, waiting in the work queue after a run
  that said it was not done, or in the failed queue with a reason;

then, fault cleared, ``ml-connector replay --failed`` and ``ml-connector sync`` (once more after the reconcile settle
time if the first says it is not done), after which every record in scope has exactly one issue, every edit reached
Jira and every status reached IFS.

"token revoked": on IFS the access token is revoked just before the call (one 401; the client must log in again);
on Jira (Basic auth) the API token is revoked, so every later call to the endpoint answers 401.

Faults use the simulators' scripted-failure contract (``PUT /_sim/faults`` ``{"fail_next": [...]}``, with ``kind``
one of status, drop_before, drop_after, html, truncated, hang). A rule matches by path, not by query, so:

* "entity reads" target the work-order set, read by the outbound flow only;
* "ETag reads" target ``GET`` on the purchase-order set: the write-back reads ETags with a filtered read of the same
  set the outbound flow reads, so this row faults both (the simulators cannot tell them apart by path).

Endpoints the connector does not call during ``sync`` are not in the matrix, so the count stays honest:

* Jira transitions (``/issue/{id}/transitions``): the engine never transitions an issue; the write-back direction
  reads statuses by search. The work here moves issues through the Jira simulator's control API instead.
* Jira webhooks (list, register, refresh, delete): only the daemon's upkeep job (OAuth) calls them, never ``sync``.
  Their row (4 calls x the same 12 faults) is ``tests/integration/runner/test_webhook_upkeep_faults.py``.
* "token revoked" on the IFS token endpoint is not a revoked token but refused client credentials, i.e. a persistent
  401; the cell runs that and expects the systemic auth exit code.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from e2e.procs import CliResult, CliZygote, SimProcess, open_store, start_all, stored_records, write_config
from ml_connector.config.models import load_config
from ml_connector.engine import Connector, OutboundSync, WritebackSync

PERSISTENT = 100_000
AUTH_EXIT = 3  # ExitCode.AUTH: credentials refused by IFS or Jira
UNAVAILABLE_EXIT = 4  # ExitCode.UNAVAILABLE: a far side stayed unreachable after retries
ERROR_EXIT = 5  # ExitCode.ERROR: any other foreseeable error (here: a read the flow needs was refused)
# Endpoints called once per record: a fault there fails records, never a flow.
PER_RECORD = frozenset({"IFS PATCH", "IFS bound action", "Jira bulk create", "Jira edit"})
HANG_SECONDS = 2.5  # past the cells' 1 s read timeout
STORM = 5  # 429s answered in a row, each with Retry-After: 1 (a storm of about 5 s)
FAULT_RUN_TIMEOUT = 90.0

WRITEBACK = {"statuses": {"Done": {"value": "Done", "action": "PurchaseOrder_Close"}}, "categories": {}}


@dataclass(frozen=True)
class Endpoint:
    name: str
    side: str  # "ifs" or "jira"
    rules: tuple[dict[str, Any], ...]  # what a fault rule matches (path_contains, method)
    token: bool = False  # the IFS token endpoint

    def match(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rules]


def _on(side: str, name: str, *paths: str, method: str | None = None, token: bool = False) -> Endpoint:
    rules = tuple({"path_contains": p, **({"method": method} if method else {})} for p in paths)
    return Endpoint(name, side, rules, token)


ENDPOINTS: tuple[Endpoint, ...] = (
    _on("ifs", "IFS token", "/protocol/openid-connect/token", token=True),
    _on("ifs", "IFS entity reads", "ActiveWorkOrdersHandling.svc/ActiveSeparateSet"),
    _on("ifs", "IFS line reads", "PurchaseOrderHandling.svc/PurchaseOrderLinePartSet"),
    _on("ifs", "IFS lookups", "SupplierHandling.svc/SupplierInfoGeneralSet", "PersonHandling.svc/PersonInfoSet"),
    _on("ifs", "IFS $metadata", "PurchaseOrderHandling.svc/$metadata"),
    _on("ifs", "IFS ETag reads", "PurchaseOrderHandling.svc/PurchaseOrderSet", method="GET"),
    _on("ifs", "IFS PATCH", "PurchaseOrderHandling.svc/PurchaseOrderSet(", method="PATCH"),
    _on("ifs", "IFS bound action", "PurchaseOrder_Close"),
    _on("jira", "Jira myself", "/rest/api/3/myself"),
    _on("jira", "Jira project search", "/rest/api/3/project/search"),
    _on("jira", "Jira field", "/rest/api/3/field"),
    _on("jira", "Jira createmeta", "/rest/api/3/issue/createmeta"),
    _on("jira", "Jira priority", "/rest/api/3/priority"),
    _on("jira", "Jira user search", "/rest/api/3/user/search"),
    _on("jira", "Jira bulk create", "/rest/api/3/issue/bulk"),
    # Issue ids are 100xx, so this is PUT /issue/{id} (sync makes no other call under it; GET would be the check
    # of a deleted issue, which should meet the same fault).
    _on("jira", "Jira edit", "/rest/api/3/issue/100"),
    _on("jira", "Jira search", "/rest/api/3/search/jql"),
)

FAULTS: tuple[str, ...] = (  # the column headings of the table: short
    "500",
    "503",
    "400",
    "403",
    "404",
    "429 storm",
    "drop before",
    "drop after",
    "HTML 2xx",
    "truncated",
    "hang",
    "token revoked",
)

# A handful of cells also run on PostgreSQL (one at a time: they share the test database).
POSTGRES_CELLS = frozenset(
    {
        ("Jira bulk create", "500"),
        ("Jira bulk create", "drop after"),
        ("Jira edit", "503"),
        ("IFS PATCH", "truncated"),
        ("Jira search", "HTML 2xx"),
        ("IFS entity reads", "token revoked"),
    }
)


@dataclass(frozen=True)
class Cell:
    endpoint: Endpoint
    fault: str
    backend: str = "sqlite"

    @property
    def id(self) -> str:
        """A pytest id: ``ifs_patch-drop_after`` (``-postgresql`` for the PostgreSQL run)."""
        name = f"{self.endpoint.name}-{self.fault}" + ("-postgresql" if self.backend == "postgresql" else "")
        return name.lower().replace(" ", "_").replace("$", "")

    def rules(self) -> list[dict[str, Any]]:
        kind, extra = _fault_rule(self.endpoint, self.fault)
        return [{**m, **extra, **({"kind": kind} if kind != "status" else {})} for m in self.endpoint.match()]

    def systemic_exits(self) -> frozenset[int]:
        """Exit codes besides 0/1 this fault may honestly end with (README's exit codes, ``ExitCode``).

        A fault on a per-record call (bulk create, edit, PATCH, bound action) fails records: 0 or 1 only. A fault on a
        read or lookup a whole flow needs (IFS pages, lines, lookups, ``$metadata``; Jira metadata, user search
        refused, the write-back search) stops that flow, and the exit code names the class of the stopper: a far side
        that stayed unreachable (5xx, dropped, malformed, hanging: UNAVAILABLE 4), a refused request (400, 404:
        ERROR 5), credentials or permissions refused (401/403: AUTH 3). The other flows still run (checked below:
        every record in scope converges after the fault)."""
        if self.endpoint.token:
            return frozenset({AUTH_EXIT, UNAVAILABLE_EXIT, ERROR_EXIT})
        if self.fault == "403" or (self.fault == "token revoked" and self.endpoint.side == "jira"):
            return frozenset({AUTH_EXIT})
        if self.endpoint.name in PER_RECORD:
            return frozenset()
        return frozenset({ERROR_EXIT}) if self.fault in ("400", "404") else frozenset({UNAVAILABLE_EXIT})


def _fault_rule(endpoint: Endpoint, fault: str) -> tuple[str, dict[str, Any]]:
    if fault.isdigit():
        return "status", {"status": int(fault), "count": PERSISTENT}
    if fault == "429 storm":
        return "status", {"status": 429, "count": STORM, "retry_after": 1}
    if fault == "token revoked":
        if endpoint.side == "ifs" and not endpoint.token:
            # The access token is revoked just before this call: a 401 once; the client must log in again.
            return "status", {"status": 401, "count": 1}
        # Jira Basic: the API token is revoked (every later call 401). IFS token endpoint: credentials refused.
        return "status", {"status": 401, "count": PERSISTENT}
    kinds = {
        "drop before": "drop_before",
        "drop after": "drop_after",
        "HTML 2xx": "html",
        "truncated": "truncated",
        "hang": "hang",
    }
    extra: dict[str, Any] = {"count": PERSISTENT}
    if fault == "hang":
        extra["hang_seconds"] = HANG_SECONDS
    return kinds[fault], extra


def all_cells() -> list[Cell]:
    cells = [Cell(e, f) for e in ENDPOINTS for f in FAULTS]
    cells += [Cell(e, f, "postgresql") for e in ENDPOINTS for f in FAULTS if (e.name, f) in POSTGRES_CELLS]
    return cells


@dataclass
class CellResult:
    cell: Cell
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    fault_exit: int | None = None

    @property
    def passed(self) -> bool:
        return not self.problems


# Filled by the matrix test; printed by the e2e conftest's terminal summary.
RESULTS: dict[str, CellResult] = {}
TIMING: dict[str, float] = {}


@dataclass
class Expected:
    """What a converged cell looks like."""

    pos: list[str]
    wos: list[str]
    edited_po: str
    edited_wo: str
    done_po: str
    progress_po: str
    marker: str


class Lane:
    """A pair of simulator processes that runs cells one after another, and the zygote its CLI runs fork from."""

    def __init__(self, ifs: SimProcess, jira: SimProcess, cli: CliZygote) -> None:
        self.ifs = ifs
        self.jira = jira
        self.cli = cli

    @staticmethod
    def start_all(root: Path, n: int) -> list[Lane]:
        """``n`` lanes, their simulators started together from the calling (main) thread."""
        specs: list[tuple[str, Path, tuple[str, ...]]] = []
        for i in range(n):
            workdir = root / f"lane{i}"
            workdir.mkdir(parents=True, exist_ok=True)
            specs.append(("ifs", workdir / "ifs.log", ("--rate-limit", "0", "--log-level", "info")))
            specs.append(("jira", workdir / "jira.log", ("--log-level", "info")))
        sims = start_all(specs)
        return [Lane(sims[2 * i], sims[2 * i + 1], CliZygote(root / f"lane{i}")) for i in range(n)]

    def stop(self) -> None:
        self.ifs.stop()
        self.jira.stop()
        self.cli.stop()

    def reset(self) -> None:
        self.ifs.control.call("POST", "reset", json={"purchase_orders": 0, "work_orders": 2})
        self.jira.control.call("POST", "reset", json={})

    def clear_faults(self) -> None:
        self.ifs.control.faults(fail_next=[])
        self.jira.control.faults(fail_next=[])

    def set_fault(self, cell: Cell) -> None:
        sim = self.ifs if cell.endpoint.side == "ifs" else self.jira
        sim.control.faults(fail_next=cell.rules())

    def fault_hit(self, cell: Cell) -> bool:
        """Whether the sync met the fault: a rule the simulator used up or counted down (logs may miss a drop)."""
        sim = self.ifs if cell.endpoint.side == "ifs" else self.jira
        left = sim.control.call("GET", "faults")["fail_next"]
        for rule in cell.rules():
            same = [r for r in left if r.get("path_contains") == rule["path_contains"]]
            if not same or same[0]["count"] < rule["count"]:
                return True
        return False

    def new_po(self) -> str:
        made = self.ifs.control.call("POST", "records/PurchaseOrder", json={"values": {"Objstate": "Released"}})
        return str(made["records"][0]["OrderNo"])

    def ifs_raw(self, entity: str, key: str) -> dict[str, Any]:
        raw: dict[str, Any] = self.ifs.control.call("GET", f"records/{entity}/{quote(key, safe='')}")
        return raw

    def ifs_edit(self, entity: str, key: str, changes: dict[str, Any]) -> None:
        self.ifs.control.call("PATCH", f"records/{entity}/{quote(key, safe='')}", json=changes)

    def issues(self) -> list[dict[str, Any]]:
        data = self.jira.control.call("GET", "issues")
        return list(data["issues"])

    def move(self, jira_key: str, *statuses: str) -> None:
        """Move an issue through the workflow as a person would, one transition per status."""
        for status in statuses:
            self.jira.control.call("POST", f"issues/{jira_key}/transition", json={"status": status})


def _tracebacks(*runs: CliResult) -> list[str]:
    return [f"traceback in {run.brief(800)}" for run in runs if "Traceback (most recent call last)" in run.output]


def _ref(issue: dict[str, Any]) -> tuple[str, str] | None:
    prop = (issue.get("properties") or {}).get("ml-connector")
    return (str(prop["flow"]), str(prop["key"])) if isinstance(prop, dict) else None


def convergence_problems(lane: Lane, rows: list[dict[str, Any]], want: Expected) -> list[str]:
    """Why the cell is not converged (empty: every record synced once, every edit in Jira, every status in IFS).
    ``rows`` are the store's records as ``ml-connector records --json`` prints them."""
    problems: list[str] = []
    scope = {("purchase_orders", k) for k in want.pos} | {("work_orders", k) for k in want.wos}
    issues = lane.issues()
    per_ref = Counter(r for r in map(_ref, issues) if r is not None)
    for ref in sorted(scope):
        if per_ref[ref] != 1:
            problems.append(f"{ref[0]}:{ref[1]} has {per_ref[ref]} Jira issues")
    stray = sorted(set(per_ref) - scope)
    if stray:
        problems.append(f"issues for records out of scope: {stray}")
    stored = {(r["flow"], r["key"]): r for r in rows}
    for ref in sorted(scope):
        row = stored.get(ref)
        if row is None:
            problems.append(f"{ref[0]}:{ref[1]} not in the store")
        elif row["state"] != "synced" or row["error"]:
            problems.append(f"{ref[0]}:{ref[1]} is {row['state']} ({row['error']})")
    by_ref = {_ref(i): i for i in issues}
    for ref in (("purchase_orders", want.edited_po), ("work_orders", want.edited_wo)):
        issue = by_ref.get(ref)
        if issue is not None and want.marker not in str(issue.get("summary")):
            problems.append(f"the edit of {ref[1]} did not reach Jira (summary {issue.get('summary')!r})")
    done = lane.ifs_raw("PurchaseOrder", want.done_po)
    if done.get("Cf_Jira_Status") != "Done" or done.get("Objstate") != "Closed":
        problems.append(
            f"{want.done_po}: Done did not reach IFS (Cf_Jira_Status={done.get('Cf_Jira_Status')!r}, "
            f"Objstate={done.get('Objstate')!r}; the bound action closes it)"
        )
    progress = lane.ifs_raw("PurchaseOrder", want.progress_po)
    if progress.get("Cf_Jira_Status") != "In Progress":
        problems.append(
            f"{want.progress_po}: In Progress did not reach IFS (Cf_Jira_Status={progress.get('Cf_Jira_Status')!r})"
        )
    return problems


def _lost(rows: list[dict[str, Any]]) -> list[str]:
    """Records neither synced, nor waiting in the work queue (pending: the next run takes them up without a change in
    IFS, after a run that did not claim success), nor in the failed queue with a reason."""
    return [
        f"{r['flow']}:{r['key']} is {r['state']} with no reason"
        for r in rows
        if r["state"] not in ("synced", "pending_create", "pending_update") and not r["error"]
    ]


def run_cell(lane: Lane, cell: Cell, store_url: str, workdir: Path) -> CellResult:
    result = CellResult(cell)
    started = time.monotonic()
    try:
        _run_cell(lane, cell, store_url, workdir, result)
    except Exception as exc:  # a broken harness step is a failed cell with its reason, not a crashed matrix
        result.problems.append(f"harness: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    finally:
        try:
            lane.clear_faults()
        except Exception as exc:
            result.problems.append(f"harness: could not clear faults: {exc}")
    result.seconds = time.monotonic() - started
    return result


def _forget_kept_metadata(store_url: str) -> None:
    """Drop the metadata the baseline sync kept in the store (engine/runtime.py): within its hour the faulty sync
    would read none, and the cells of those endpoints would never meet their fault."""
    store = open_store(store_url)
    try:
        store.metadata.forget("jira:", "createmeta:", "ifs:")
    finally:
        store.close()


def _run_cell(lane: Lane, cell: Cell, store_url: str, workdir: Path, result: CellResult) -> None:
    lane.reset()
    pos = [lane.new_po() for _ in range(3)]
    config = write_config(
        workdir / "ml-connector.yaml", ifs_url=lane.ifs.url, jira_url=lane.jira.url, store_url=store_url
    )
    _writeback(config)
    baseline = baseline_sync(config)
    if baseline:
        result.problems.append(f"baseline sync failed before any fault: {baseline}")
        return
    wos = [r["key"] for r in stored_records(store_url) if r["flow"] == "work_orders"]
    by_key = {_ref(i): i for i in lane.issues()}
    marker = "chaos edit"
    want = Expected(
        pos=[*pos, lane.new_po(), lane.new_po()],
        wos=wos,
        edited_po=pos[1],
        edited_wo=wos[0],
        done_po=pos[0],
        progress_po=pos[2],
        marker=marker,
    )
    lane.ifs_edit("PurchaseOrder", want.edited_po, {"Description": marker})
    lane.ifs_edit("WorkOrder", want.edited_wo, {"ErrDescr": marker})
    lane.move(by_key[("purchase_orders", want.done_po)]["key"], "In Progress", "Done")
    lane.move(by_key[("purchase_orders", want.progress_po)]["key"], "In Progress")

    _forget_kept_metadata(store_url)  # the faulty sync reads Jira and IFS metadata, as any process past its TTL does
    try:
        lane.set_fault(cell)
    except Exception as exc:
        result.problems.append(f"the simulator refused the fault {cell.rules()}: {exc}")
        return
    faulty = lane.cli.run(config, "sync", timeout=FAULT_RUN_TIMEOUT)
    if not lane.fault_hit(cell):  # a cell whose endpoint this sync never called would prove nothing
        result.problems.append("the fault was never hit: this sync did not call the endpoint")
    lane.clear_faults()
    result.fault_exit = faulty.code
    result.problems += _tracebacks(faulty)
    if faulty.code == -9:
        result.problems.append(f"sync did not finish with the fault on: {faulty.brief()}")
    else:
        rows = stored_records(store_url)  # what `ml-connector records --json` prints, without a process start
        unconverged = convergence_problems(lane, rows, want)
        if faulty.code == 0 and unconverged:
            result.problems.append(f"exit 0 although not everything synced: {unconverged[:4]}")
        elif faulty.code == 1 and not unconverged:
            result.problems.append("exit 1 although everything synced")
        elif faulty.code not in (0, 1) and faulty.code not in cell.systemic_exits():
            result.problems.append(f"exit code {faulty.code}: {faulty.brief(600)}")
        result.problems += _lost(rows)

    replay = lane.cli.run(config, "replay", "--failed")
    result.problems += _tracebacks(replay)
    if replay.code not in (0, 1):
        result.problems.append(f"replay --failed: {replay.brief(600)}")
    again = lane.cli.run(config, "sync")
    if again.code != 0:
        time.sleep(0.6)  # the scenario: an unconfirmed create is re-checked once reconcile_settle (0.5 s) passed
        again = lane.cli.run(config, "sync")
    result.problems += _tracebacks(again)
    if again.code != 0:
        result.problems.append(f"sync after the fault cleared: {again.brief(600)}")
    result.problems += convergence_problems(lane, stored_records(store_url), want)


def baseline_sync(config: Path) -> list[str]:
    """The fault-free first sync, in this process (the same engine calls as ``ml-connector sync``, minus the start
    of a Python process per cell): what it did not finish."""
    settings = load_config(config)
    assert settings.store.url is not None
    connector = Connector(config=settings, store=open_store(settings.store.url))
    try:
        reports = []
        for flow in connector.config.flows:
            reports.append(OutboundSync(connector, flow).run())
            if flow.writeback.enabled:
                reports.append(WritebackSync(connector, flow).run())
    finally:
        connector.close()
        connector.store.close()
    return [f"{r.flow} {r.kind}: {r.status} {dict(r.counts)}" for r in reports if r.failed]


def _writeback(config: Path) -> None:
    """PO write-back: Done is written and closes the order through the bound action; other statuses are written."""
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    po = next(f for f in data["flows"] if f["name"] == "purchase_orders")
    po["writeback"].update(WRITEBACK)
    wo = next(f for f in data["flows"] if f["name"] == "work_orders")
    wo["writeback"] = {"enabled": False}  # the read-only work-order set takes no writes; its PATCHes are not ours
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def run_matrix(
    cells: list[Cell],
    root: Path,
    *,
    lanes: int,
    pg_store: Callable[[], str] | None,
) -> dict[str, CellResult]:
    """Run ``cells`` over ``lanes`` simulator pairs; PostgreSQL cells one at a time (they share one database)."""
    queue = list(cells)
    results: dict[str, CellResult] = {}
    take = threading.Lock()
    pg_lock = threading.Lock()

    def lane_main(n: int, lane: Lane) -> None:
        while True:
            with take:
                if not queue:
                    return
                cell = queue.pop(0)
                workdir = root / f"lane{n}" / f"cell{len(results)}"
            workdir.mkdir(parents=True, exist_ok=True)
            if cell.backend == "postgresql":
                if pg_store is None:
                    res = CellResult(cell, ["PostgreSQL cell without ML_CONNECTOR_TEST_PG_DSN"])
                else:
                    with pg_lock:
                        res = run_cell(lane, cell, pg_store(), workdir)
            else:
                res = run_cell(lane, cell, f"sqlite:///{workdir / 'state.sqlite'}", workdir)
            with take:
                results[cell.id] = res

    running = Lane.start_all(root, lanes)
    try:
        threads = [
            threading.Thread(target=lane_main, args=(n, lane), name=f"chaos-lane-{n}") for n, lane in enumerate(running)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for lane in running:
            lane.stop()
    missing = [c for c in cells if c.id not in results]
    for c in missing:
        results[c.id] = CellResult(c, ["not run: its lane stopped early"])
    return results


def table(results: dict[str, CellResult]) -> list[str]:
    """Endpoint rows x fault columns; each cell shows passed/total (the PostgreSQL run of a cell counts too)."""
    width = max(len(e.name) for e in ENDPOINTS) + 1
    head = f"{'endpoint':<{width}}" + "".join(f"{SHORT.get(f, f):>7}" for f in FAULTS) + f"{'row':>9}"
    lines = [head, "-" * len(head)]
    total = passed = 0
    for endpoint in ENDPOINTS:
        row = f"{endpoint.name:<{width}}"
        row_total = row_passed = 0
        for fault in FAULTS:
            runs = [r for r in results.values() if r.cell.endpoint == endpoint and r.cell.fault == fault]
            ok = sum(r.passed for r in runs)
            row += f"{f'{ok}/{len(runs)}' if runs else '-':>7}"
            row_total += len(runs)
            row_passed += ok
        total += row_total
        passed += row_passed
        lines.append(row + f"{row_passed:>5}/{row_total:<3}")
    lines.append(f"chaos matrix: {passed}/{total} cells passed")
    return lines


SHORT = {
    "429 storm": "429x5",
    "drop before": "drop<",
    "drop after": "drop>",
    "HTML 2xx": "html",
    "truncated": "trunc",
    "token revoked": "revoke",
}


def failure_lines(results: dict[str, CellResult], width: int = 200) -> list[str]:
    """One line per failed cell: its first problem, to see at a glance why."""
    lines = []
    for r in sorted(results.values(), key=lambda r: r.cell.id):
        if not r.passed:
            first = " ".join(r.problems[0].split())
            lines.append(f"{r.cell.id} (exit {r.fault_exit}): {first}"[:width])
    return lines
