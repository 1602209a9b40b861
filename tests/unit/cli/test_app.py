"""The root command group imports a command's module only when a command line names it (cli.app.COMMAND_MODULES):
every ``ml-connector`` process start pays for the imports of the command it runs, not of all of them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

import ml_connector.runner
from ml_connector.cli.app import COMMAND_MODULES, _register_commands, app

# What the web app, the job queue, the scheduler and the simulators' server need; a connector command does not.
SERVER_MODULES = (
    "fastapi",
    "uvicorn",
    "procrastinate",
    "apscheduler",
    "ml_connector.web",
    "ml_connector.runner.daemon",
)
CONNECTOR_MODULES = ("sqlalchemy", "alembic", "ml_connector.engine", "ml_connector.store")


def _imported_by(*argv: str) -> set[str]:
    """The modules a fresh ``ml-connector ARGV`` process has imported once its command is resolved (``--help``)."""
    probe = (
        "import sys; from ml_connector.cli.app import main; sys.argv = ['ml-connector', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint(' '.join(sys.modules), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120, check=True)
    return set(done.stderr.split())


def test_every_command_is_registered_by_the_module_the_table_names() -> None:
    _register_commands(*COMMAND_MODULES.values())
    group = typer.main.get_group(app)
    assert set(group.commands) == set(COMMAND_MODULES)
    for info in app.registered_commands:
        assert info.callback is not None
        assert COMMAND_MODULES[info.callback.__name__] == info.callback.__module__.rsplit(".", 1)[1]


@pytest.mark.parametrize("command", ["sync", "replay", "records"])
def test_a_connector_command_does_not_import_the_servers(command: str) -> None:
    loaded = _imported_by(command, "--help")
    assert set(CONNECTOR_MODULES) <= loaded  # the probe sees what the command needs
    assert not loaded & set(SERVER_MODULES), sorted(loaded & set(SERVER_MODULES))


def test_a_simulator_does_not_import_the_connector() -> None:
    loaded = _imported_by("sim", "ifs", "--help")
    assert not loaded & set(CONNECTOR_MODULES), sorted(loaded & set(CONNECTOR_MODULES))


def test_help_lists_every_command() -> None:
    loaded = _imported_by("--help")
    assert {f"ml_connector.cli.{m}" for m in COMMAND_MODULES.values()} <= loaded


def test_the_runner_package_resolves_its_names_on_first_use() -> None:
    for name in ml_connector.runner.__all__:
        value = getattr(ml_connector.runner, name)
        assert value.__module__.startswith("ml_connector.runner."), name
    with pytest.raises(AttributeError):
        ml_connector.runner.no_such_name  # noqa: B018
