"""`check` and `sync` with a PostgreSQL store but without the `postgres` extra: exit 2 and the fix, no traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from e2e.harness import example_config

from ml_connector.cli import app as cli_app


@pytest.mark.parametrize("command", ["check", "sync"])
def test_a_missing_psycopg_is_a_config_error_naming_the_extra(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = example_config()
    data["store"] = {"url": "postgresql://connector@127.0.0.1:1/nowhere"}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    monkeypatch.setattr(sys, "argv", ["ml-connector", command, "-c", str(path)])
    with pytest.raises(SystemExit) as done:
        cli_app.main()
    out, err = capsys.readouterr()
    assert done.value.code == cli_app.ExitCode.CONFIG == 2
    assert "store.url" in out + err and "pip install 'ml-connector[postgres]'" in out + err
    assert "Traceback" not in out + err
