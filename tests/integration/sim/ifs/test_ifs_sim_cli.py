"""``ml-connector sim ifs`` starts a server that answers over HTTP."""

from __future__ import annotations

import os
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


def test_cli_serves_the_simulator() -> None:
    port = free_port()
    command = [
        *_cli(),
        "sim",
        "ifs",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--purchase-orders",
        "7",
        "--strict-if-match",
        "--latency-ms",
        "5",
        "--server-time-profile",
        "realistic",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        response = None
        while time.monotonic() < deadline:
            try:
                response = httpx2.get(f"{base}/auth/realms/mlc/.well-known/openid-configuration", timeout=2)
                break
            except httpx2.TransportError:
                assert process.poll() is None, process.communicate()[1].decode()
                time.sleep(0.1)
        assert response is not None and response.status_code == 200
        assert response.json()["token_endpoint"].endswith("/auth/realms/mlc/protocol/openid-connect/token")
        assert httpx2.get(f"{base}/_sim/records/PurchaseOrder", timeout=5).json()["count"] == 7
        assert httpx2.get(f"{base}/_sim/settings", timeout=5).json() == {"strict_if_match": True}
        faults = httpx2.get(f"{base}/_sim/faults", timeout=5).json()
        assert faults["latency_ms"] == 5 and faults["server_time_profile"] == "realistic"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


def test_cli_help_lists_the_options() -> None:
    result = subprocess.run([*_cli(), "sim", "ifs", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert "--purchase-orders" in result.stdout and "--port" in result.stdout
    assert "--strict-if-match" in result.stdout
