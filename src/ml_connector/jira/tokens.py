"""OAuth token persistence: a tiny store protocol so a rotated refresh token is never lost.

Atlassian rotates the refresh token on every refresh and invalidates the old one, so the new one must be durable
*before* the new access token is used: a crash in between would otherwise lock the connector out until re-consent.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from ml_connector.errors import ConfigError


@dataclass(frozen=True)
class TokenSet:
    """One OAuth grant: ``expires_at`` is epoch seconds (0 when unknown: treat as expired)."""

    access_token: str
    refresh_token: str | None
    expires_at: float = 0.0
    scope: str | None = None
    cloud_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenSet:
        return cls(
            access_token=str(data.get("access_token") or ""),
            refresh_token=data.get("refresh_token"),
            expires_at=float(data.get("expires_at") or 0.0),
            scope=data.get("scope"),
            cloud_id=data.get("cloud_id"),
        )

    def __repr__(self) -> str:  # never show tokens in tracebacks or logs
        return f"TokenSet(expires_at={self.expires_at!r}, scope={self.scope!r}, cloud_id={self.cloud_id!r})"


class TokenStore(Protocol):
    """Where the current grant lives; ``save`` must be durable when it returns."""

    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...


class MemoryTokenStore:
    """For tests and short-lived processes; ``saves`` counts writes so tests can check ordering."""

    def __init__(self, initial: TokenSet | None = None) -> None:
        self._tokens = initial
        self._lock = threading.Lock()
        self.saves = 0

    def load(self) -> TokenSet | None:
        with self._lock:
            return self._tokens

    def save(self, tokens: TokenSet) -> None:
        with self._lock:
            self._tokens = tokens
            self.saves += 1


class FileTokenStore:
    """A JSON file written atomically (temp file in the same directory, fsync, rename), mode 0600."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def load(self) -> TokenSet | None:
        with self._lock:
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"token file {self.path} is not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"token file {self.path} does not hold a JSON object")
        return TokenSet.from_dict(data)

    def save(self, tokens: TokenSet) -> None:
        payload = json.dumps(tokens.to_dict(), sort_keys=True).encode("utf-8")
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            # fsync the directory so the rename itself survives a power cut.
            try:
                dir_fd = os.open(directory, os.O_RDONLY)
            except OSError:
                return
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
