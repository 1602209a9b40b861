"""``ml-connector sim ifs|jira``: run a simulator as a server."""

from __future__ import annotations

import typer

from ml_connector.cli.app import app

sim_app = typer.Typer(help="Run the IFS Cloud or Jira Cloud simulator on a loopback port.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")

# Each simulator registers its own command on ``sim_app``.
from ml_connector.cli import sim_ifs, sim_jira  # noqa: E402, F401
