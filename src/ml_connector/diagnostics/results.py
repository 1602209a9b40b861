"""What a check yields: ``CheckResult`` rows, collected (and redacted) in order by ``Findings``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ml_connector.errors import ConnectorError
from ml_connector.http.redact import redact

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"

T = TypeVar("T")


@dataclass(frozen=True)
class CheckResult:
    system: str  # ifs | jira | web
    name: str
    status: str  # pass | fail | warn | skip
    detail: str = ""
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def why(exc: BaseException) -> str:
    """An error as an operator reads it: the connector's own message, or the type and text of anything else."""
    return str(exc) if isinstance(exc, ConnectorError) else f"{type(exc).__name__}: {exc}"


class Findings:
    """The results so far, in the order the checks ran; every detail and fix is redacted against ``secrets``."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._secrets = secrets
        self.results: list[CheckResult] = []

    def add(self, system: str, name: str, status: str, detail: str = "", fix: str | None = None) -> CheckResult:
        clean = str(redact(detail, secrets=self._secrets))
        fix_clean = str(redact(fix, secrets=self._secrets)) if fix else None
        result = CheckResult(system, name, status, clean, fix_clean)
        self.results.append(result)
        return result

    def fail(self, system: str, name: str, exc: BaseException, fix: str) -> None:
        """A failed check whose detail is the error that failed it."""
        self.add(system, name, FAIL, why(exc), fix)

    def guard(self, system: str, name: str, fix: str, call: Callable[[], T]) -> T | None:
        """``call()``, or None after recording its failure (a connector error) as a failed check."""
        try:
            return call()
        except ConnectorError as exc:
            self.fail(system, name, exc, fix)
            return None
