"""Start the connector-under-test (``bench.worker``) or the baseline (``bench.baseline``) as a subprocess and talk
to it line by line."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import IO, Any


class Child:
    def __init__(self, module: str, spec: dict[str, Any], log_path: Path) -> None:
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.log_path = log_path

    def result(self) -> dict[str, Any]:
        """The next ``BENCH {...}`` line (other output is ignored)."""
        out: IO[str] | None = self.proc.stdout
        assert out is not None
        for line in out:
            if line.startswith("BENCH "):
                data: dict[str, Any] = json.loads(line[6:])
                return data
        self.proc.wait()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{self.proc.args[2]} exited ({self.proc.returncode}) without a result:\n{tail}")

    def go(self, word: str = "go") -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def close(self) -> int:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            code = self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code
