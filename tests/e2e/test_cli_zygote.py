"""The chaos matrix's CLI runs fork from a process that imported the CLI once (``e2e/cli_zygote.py``). A run forked
that way must be indistinguishable from a fresh ``python -m ml_connector.cli`` to what the matrix checks: the exit
code, stdout, stderr, and a run that outlives its timeout killed and reported as -9, after which the zygote serves
the next run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.procs import CliZygote, run_cli, write_config


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[CliZygote]:
    cli = CliZygote(tmp_path)
    try:
        yield cli
    finally:
        cli.stop()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    # No simulator is running at these addresses: the commands below never call them.
    return write_config(
        tmp_path / "ml-connector.yaml",
        ifs_url="http://127.0.0.1:9",
        jira_url="http://127.0.0.1:9",
        store_url=f"sqlite:///{tmp_path / 'state.sqlite'}",
    )


def test_a_forked_run_answers_as_a_fresh_process_does(zygote: CliZygote, config: Path) -> None:
    for args in (("status",), ("records", "--no-such-option"), ("replay", "--failed")):
        fresh, forked = run_cli(config, *args), zygote.run(config, *args)
        assert (forked.code, forked.stdout) == (fresh.code, fresh.stdout), (fresh.brief(), forked.brief())
        # Click names the program after how it was started: the console script's name here, as operators run it.
        assert forked.stderr == fresh.stderr.replace("python -m ml_connector.cli", "ml-connector")
    assert "purchase_orders" in zygote.run(config, "status").stdout
    assert zygote.run(config, "records", "--no-such-option").code == 2  # the usage error, as Click exits


def test_a_run_past_its_timeout_is_killed_and_the_next_run_is_served(zygote: CliZygote, config: Path) -> None:
    hung = zygote.run(None, "sim", "ifs", "--port", "0", timeout=3)  # a simulator serves until it is stopped
    assert hung.code == -9
    assert "[killed: still running after 3 s]" in hung.stderr
    assert 3 <= hung.seconds < 10
    assert zygote.run(config, "records", "--json").code == 0
