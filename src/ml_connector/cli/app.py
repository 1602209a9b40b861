"""The ``ml-connector`` command line."""

from __future__ import annotations

import importlib
import os
import sys
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from ml_connector import __version__
from ml_connector.errors import AuthError, ConfigError, ConnectorError, TransientError
from ml_connector.http.redact import redact
from ml_connector.logging import DEBUG_ENV, debug_enabled, describe_exception, known_secrets

if TYPE_CHECKING:
    from typer import _click as click  # the click Typer vendors (0.2x), whose types its group's methods take

# The module that adds each command to ``app``. A command line imports only the module of the command it names: each
# process start (a cron job, the tests' thousand CLI runs) then skips the web app, job queue and scheduler imports
# that other commands need. Help, and a name that is no command, import them all.
COMMAND_MODULES = {
    "check": "check",
    "worker": "worker",
    "migrate": "worker",
    "sync": "commands",
    "status": "commands",
    "records": "commands",
    "audit": "commands",
    "replay": "commands",
    "init": "commands",
    "demo": "demo",
    "run": "run",
    "jira": "auth",
    "auth": "auth",
    "sim": "sim",
}


class _CommandsOnDemand(typer.core.TyperGroup):
    """The root group: a command's module is imported when the command line names it (see COMMAND_MODULES)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            self._load(COMMAND_MODULES[cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load(*COMMAND_MODULES.values())
        return super().list_commands(ctx)

    def _load(self, *modules: str) -> None:
        _register_commands(*modules)
        self.commands = typer.main.get_group(app).commands  # rebuilt from every command registered so far


app = typer.Typer(
    cls=_CommandsOnDemand,
    name="ml-connector",
    help="Keeps IFS Cloud purchase orders and work orders in step with Jira Cloud issues.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)
CONNECTION_ENV = "ML_CONNECTOR_CONNECTION"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class LogFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


class ExitCode(IntEnum):
    """Exit codes a cron job or a script can rely on."""

    OK = 0
    RECORDS_FAILED = 1  # the run finished, but not every record is synced (failed, deferred, waiting or parked)
    CONFIG = 2  # invalid configuration or usage
    AUTH = 3  # credentials refused by IFS or Jira
    UNAVAILABLE = 4  # a far side stayed unreachable after retries
    ERROR = 5  # any other foreseeable error
    BUSY = 6  # another process holds the lease for this work
    INTERNAL = 7  # an unexpected error (a bug): one line on stderr names the file with the full report


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
    debug: bool = typer.Option(
        False, "--debug", help="Full tracebacks in logs and errors (still redacted; never local variables)."
    ),
    log_level: LogLevel | None = typer.Option(
        None, "--log-level", help="Log level (default: $ML_CONNECTOR_LOG_LEVEL, then log_level in the config)."
    ),
    log_format: LogFormat | None = typer.Option(
        None,
        "--log-format",
        help="console or json (default: $ML_CONNECTOR_LOG_FORMAT, then log_format in the config, then console; "
        "`run` on a non-terminal stderr logs json).",
    ),
    connection: str | None = typer.Option(
        None,
        "--connection",
        envvar=CONNECTION_ENV,
        help="The connection (IFS tenant + Jira site) a command works on; may be left out when the config file has "
        "only one. `run` runs every connection unless one is named.",
        show_default=False,
    ),
) -> None:
    from ml_connector.cli.context import log_overrides, selection

    selection["connection"] = connection
    log_overrides["level"] = log_level.value if log_level else None
    log_overrides["format"] = log_format.value if log_format else None
    if debug:
        os.environ[DEBUG_ENV] = "1"  # read by logging.configure and by main() below
    if version:
        typer.echo(f"ml-connector {__version__}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _register_commands(*modules: str) -> None:
    """Import command modules (``ml_connector.cli.<name>``), which add their commands to ``app`` as a side effect."""
    for module in dict.fromkeys(modules):
        importlib.import_module(f"ml_connector.cli.{module}")


def exit_code_for(error: BaseException) -> ExitCode:
    from ml_connector.engine.locks import FlowBusy

    if not isinstance(error, ConnectorError):
        return ExitCode.INTERNAL
    if isinstance(error, FlowBusy):
        return ExitCode.BUSY
    if isinstance(error, ConfigError):
        return ExitCode.CONFIG
    if isinstance(error, AuthError):
        return ExitCode.AUTH
    if isinstance(error, TransientError):
        return ExitCode.UNAVAILABLE
    return ExitCode.ERROR


def print_error(error: BaseException, *, where: str = "", report: Path | None = None) -> None:
    """One line on stderr: a foreseeable error with its (redacted) message, an unexpected one with its report file."""
    prefix = f"{where}: " if where else ""
    if report is not None:
        err_console.print(
            f"[bold red]unexpected error[/] {escape(prefix)}({type(error).__name__}); "
            f"the full report is in {escape(str(report))}",
            highlight=False,
            soft_wrap=True,
        )
        return
    message = redact(str(error), secrets=known_secrets())
    err_console.print(
        f"[bold red]error[/] {escape(prefix)}({type(error).__name__}): {escape(message)}",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    """Console entry point: foreseeable errors become one clear line and an exit code, never a traceback; an
    unexpected one becomes one line naming its report file, and exit code 7."""
    try:
        app()
    except ConnectorError as exc:
        print_error(exc)
        if debug_enabled():
            err_console.print(escape(describe_exception(exc)), highlight=False)
        sys.exit(exit_code_for(exc))
    except Exception as exc:  # a bug: one line naming the redacted report (never locals); the stack with --debug
        from ml_connector.engine.report import write_crash_report

        print_error(exc, report=write_crash_report(exc))
        if debug_enabled():
            err_console.print(escape(describe_exception(exc)), highlight=False)
        sys.exit(ExitCode.INTERNAL)
