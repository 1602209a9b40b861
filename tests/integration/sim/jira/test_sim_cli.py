"""``ml-connector sim jira`` takes the latency, burst, server-time and API-token options, and refuses a bad burst
value."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx2

from ml_connector.serve import free_port


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("ml-connector")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from ml_connector.cli.app import main; main()"]


def test_cli_sets_latency_burst_and_server_time() -> None:
    port = free_port()
    command = [
        *_cli(),
        "sim",
        "jira",
        "--port",
        str(port),
        "--latency-ms",
        "5",
        "--burst",
        "documented",
        "--server-time-profile",
        "realistic",
        "--api-token",
        "token-of-this-site",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        faults = None
        while time.monotonic() < deadline and faults is None:
            try:
                faults = httpx2.get(f"http://127.0.0.1:{port}/_sim/faults", timeout=2).json()
            except httpx2.TransportError:
                assert process.poll() is None, process.communicate()[1].decode()
                time.sleep(0.1)
        assert faults is not None
        assert faults["latency_ms"] == 5
        assert faults["burst_per_second"] == "documented"
        assert faults["server_time_profile"] == "realistic"
        myself = f"http://127.0.0.1:{port}/rest/api/3/myself"
        assert httpx2.get(myself, auth=("connector@example.com", "token-of-this-site"), timeout=5).status_code == 200
        assert httpx2.get(myself, auth=("connector@example.com", "sim-api-token"), timeout=5).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def test_cli_refuses_a_bad_burst_value() -> None:
    for value in ("fast", "0", "-3"):
        done = subprocess.run([*_cli(), "sim", "jira", "--burst", value], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "--burst" in done.stderr
