"""What `sync` prints: no third-party chatter on a terminal, one parseable JSON object per line with `--log-format
json`, and no secret in either."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import yaml
from e2e.harness import World, example_config, world

SECRETS = ("sim-secret", "sim-api-token")


def _config(w: World, tmp_path: Path) -> Path:
    data = example_config()
    data["ifs"].update(url=w.ifs.url)
    data["jira"].update(url=w.jira.url)
    data["store"] = {"url": f"sqlite:///{tmp_path / 'state.sqlite'}"}
    path = tmp_path / "ml-connector.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CONNECTOR_LOG")}
    return {**env, "COLUMNS": "120", "TERM": "xterm"}


def _run_in_pty(args: list[str]) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns (exit code, everything it wrote)."""
    main, child = pty.openpty()
    proc = subprocess.Popen(args, stdin=child, stdout=child, stderr=child, env=_env(), close_fds=True)
    os.close(child)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_sync_on_a_terminal_shows_no_http_request_lines(tmp_path: Path) -> None:
    with world(purchase_orders=260, work_orders=5) as w:
        path = _config(w, tmp_path)
        cli = [sys.executable, "-m", "ml_connector.cli", "--log-level", "INFO", "sync", "-c", str(path)]
        code, text = _run_in_pty(cli)
        assert code in (0, 1), text
        assert "created" in text
        creating = {(int(n), int(m)) for n, m in re.findall(r"creating in Jira\D*?(\d+)/(\d+)", _plain(text))}
        assert any(0 < n < m for n, m in creating), creating  # the count moved during the Jira phase
        assert "HTTP Request" not in text
        assert not any(secret in text for secret in SECRETS)


def test_sync_with_json_logs_writes_one_object_per_line(tmp_path: Path) -> None:
    with world(purchase_orders=30, work_orders=5) as w:
        path = _config(w, tmp_path)
        cli = [sys.executable, "-m", "ml_connector.cli", "--log-format", "json", "--log-level", "INFO", "sync"]
        done = subprocess.run([*cli, "-c", str(path)], capture_output=True, text=True, env=_env(), timeout=120)
        assert done.returncode in (0, 1), done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert lines  # INFO events of our own were logged
        events = [json.loads(line) for line in lines]
        assert all({"event", "level", "timestamp"} <= event.keys() for event in events)
        assert "HTTP Request" not in done.stderr
        assert not any(secret in done.stderr + done.stdout for secret in SECRETS)
