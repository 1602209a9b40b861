"""``ml-connector sim ifs|jira``: run a simulator as a server."""

from __future__ import annotations

from enum import StrEnum

import typer

from ml_connector.cli.app import app

sim_app = typer.Typer(help="Run the IFS Cloud or Jira Cloud simulator on a loopback port.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")


class ServerTimeProfileChoice(StrEnum):
    """The named profiles of ``ml_connector.sim.servertime.PROFILES`` (typer needs an Enum for choices)."""

    realistic = "realistic"


def burst_option(value: str | None) -> str | None:
    """``--burst``: "documented", "off" or a positive number (checked here, so a typo is a usage error)."""
    if value is None or value in ("documented", "off"):
        return value
    try:
        if float(value) > 0:
            return value
    except ValueError:
        pass
    raise typer.BadParameter('expected "documented", "off" or a number of requests per second > 0')


# Each simulator registers its own command on ``sim_app``.
from ml_connector.cli import sim_ifs, sim_jira  # noqa: E402, F401
