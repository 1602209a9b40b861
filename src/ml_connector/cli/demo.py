"""``ml-connector demo``: the whole product against the built-in simulators, no network, no credentials."""

from __future__ import annotations

import shutil
import time
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import typer
import yaml
from rich.console import Console
from rich.table import Table

from ml_connector.cli.app import app
from ml_connector.cli.context import open_connector
from ml_connector.engine import Connector, OutboundSync, RunReport, WritebackSync
from ml_connector.serve import ServerHandle, serve_in_thread

console = Console()

# What the simulated Jira users do after the first sync: (project, how many issues, the statuses they walk through).
DEMO_TRANSITIONS = (
    ("PROC", 6, ("In Progress",)),
    ("PROC", 4, ("In Progress", "Awaiting Delivery", "Done")),
    ("MAINT", 5, ("In Progress",)),
)


def _write_config(workdir: Path, ifs_url: str, jira_url: str) -> Path:
    text = resources.files("ml_connector.config").joinpath("templates/example.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    data["ifs"].update(url=ifs_url, realm="mlc", client_id="ml-connector", client_secret="sim-secret")
    data["ifs"]["http"] = {"requests_per_minute": None}
    # The simulator signs with its published default; `simulator: true` (loopback only) is what permits it.
    data["jira"].update(url=jira_url, simulator=True, webhook_secret="sim-webhook-secret")
    data["jira"]["auth"] = {"kind": "basic", "email": "connector@example.com", "api_token": "sim-api-token"}
    data["store"] = {"url": f"sqlite:///{(workdir / 'demo.sqlite').resolve()}"}
    data["log_level"] = "WARNING"
    path = workdir / "ml-connector.yaml"
    path.write_text(
        "# Written by `ml-connector demo` for the built-in simulators.\n" + yaml.safe_dump(data, sort_keys=False)
    )
    return path


def _start_simulators(purchase_orders: int, work_orders: int) -> tuple[ServerHandle, ServerHandle]:
    from ml_connector.sim.ifs import IfsSimOptions
    from ml_connector.sim.ifs import create_app as create_ifs
    from ml_connector.sim.jira import JiraSimOptions
    from ml_connector.sim.jira import create_app as create_jira

    ifs = serve_in_thread(create_ifs(IfsSimOptions(purchase_orders=purchase_orders, work_orders=work_orders)))
    jira = serve_in_thread(create_jira(JiraSimOptions()))
    return ifs, jira


def _people_act(jira_url: str) -> list[tuple[str, str]]:
    """Simulated Jira users move some issues along their workflow."""
    moved: list[tuple[str, str]] = []
    with httpx2.Client(base_url=jira_url, timeout=30) as http:
        for project, count, path in DEMO_TRANSITIONS:
            issues = http.get("/_sim/issues", params={"project": project}).raise_for_status().json()
            rows = issues if isinstance(issues, list) else issues.get("issues", [])
            taken = {key for key, _ in moved}
            for issue in [i for i in rows if i["key"] not in taken][:count]:
                reached = None
                for status in path:  # one workflow step at a time, as a person would click
                    response = http.post(
                        f"/_sim/issues/{issue['key']}/transition", json={"status": status, "as": "bo.chen@example.com"}
                    )
                    if response.status_code >= 300:
                        break
                    reached = status
                if reached:
                    moved.append((issue["key"], reached))
    return moved


def _ifs_status(ifs_url: str, entity: str, key: str) -> str | None:
    with httpx2.Client(base_url=ifs_url, timeout=30) as http:
        response = http.get(f"/_sim/records/{entity}/{quote(key, safe='')}")
        if response.status_code != 200:
            return None
        value = response.json().get("Cf_Jira_Status")
        return str(value) if value is not None else None


def _report_table(title: str, reports: list[RunReport]) -> Table:
    table = Table(title=title)
    for col in ("flow", "kind", "status", "counts"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.flow, r.kind, r.status, ", ".join(f"{k}={v}" for k, v in sorted(r.counts.items())))
    return table


def _after_table(connector: Connector, ifs_url: str, moved: list[tuple[str, str]]) -> Table:
    table = Table(title="Jira status written back to IFS (Cf_Jira_Status)")
    for col in ("IFS record", "Jira issue", "status in Jira", "Cf_Jira_Status in IFS"):
        table.add_column(col)
    for jira_key, status in moved:
        matches = connector.store.records.find(jira_key)
        record = next((r for r in matches if r.jira_key == jira_key), None)
        if record is None:
            continue
        entity = "PurchaseOrder" if record.flow == "purchase_orders" else "WorkOrder"
        table.add_row(
            f"{record.flow}:{record.ifs_key}", jira_key, status, _ifs_status(ifs_url, entity, record.ifs_key) or "-"
        )
    return table


@app.command()
def demo(
    no_serve: bool = typer.Option(False, "--no-serve", help="Exit after the summary instead of serving the dashboard."),
    port: int = typer.Option(8080, "--port", help="Dashboard port on 127.0.0.1 (0 picks a free one)."),
    purchase_orders: int = typer.Option(120, "--purchase-orders"),
    work_orders: int = typer.Option(40, "--work-orders"),
    workdir: Path = typer.Option(Path(".demo"), "--workdir", help="Where the demo config and database go."),
) -> None:
    """Start both simulators, sync, let simulated users resolve issues, write their status back, show the result."""
    started = time.monotonic()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    console.print("[bold]ml-connector demo[/]: starting the IFS Cloud and Jira Cloud simulators on loopback")
    ifs, jira = _start_simulators(purchase_orders, work_orders)
    config_path = _write_config(workdir, ifs.url, jira.url)
    console.print(f"  IFS Cloud simulator  {ifs.url}\n  Jira Cloud simulator {jira.url}\n  config {config_path}")
    connector = open_connector(config_path)
    try:
        flows = [f for f in connector.config.flows if f.enabled]
        console.print("\n[bold]1.[/] IFS → Jira: purchase orders and work orders become issues")
        first = [OutboundSync(connector, f).run() for f in flows]
        console.print(_report_table("First sync", first))
        again = [OutboundSync(connector, f).run() for f in flows]
        console.print(_report_table("Second sync (nothing changed in IFS: no Jira writes)", again))
        console.print("\n[bold]2.[/] Simulated Jira users work on some issues")
        moved = _people_act(jira.url)
        console.print(f"  {len(moved)} issues transitioned in Jira")
        console.print("\n[bold]3.[/] Jira → IFS: status written back with If-Match")
        back = [WritebackSync(connector, f).run() for f in flows]
        console.print(_report_table("Write-back", back))
        console.print(_after_table(connector, ifs.url, moved))
        counts = connector.store.records.count_by_flow_state()
        summary = ", ".join(f"{flow}/{state}={n}" for (flow, state), n in sorted(counts.items()))
        console.print(f"\nrecords in the store: {summary}")
        console.print(
            f"demo finished in {time.monotonic() - started:.1f} s; try: "
            f"ml-connector status -c {config_path}, ml-connector audit <PO number> -c {config_path}"
        )
        if not no_serve:
            _serve_dashboard(connector, port)
    finally:
        connector.close()
        ifs.stop()
        jira.stop()


def _serve_dashboard(connector: Connector, port: int) -> None:
    try:
        from ml_connector.web import create_app
    except ImportError:
        console.print("(the dashboard is not available in this build)")
        return
    handle = serve_in_thread(create_app(connector), port=port)
    console.print(f"\n[bold]Dashboard:[/] {handle.url}/  (local only, no token needed; Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        handle.stop()
