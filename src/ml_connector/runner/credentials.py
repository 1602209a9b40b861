"""OAuth tokens for the daemon, kept in the ``credentials`` table and encrypted with Fernet.

The key comes from ``store.credentials_key``, else ``ML_CONNECTOR_KEY``, else a 0600 key file beside the database
(created on first use). The database alone never reveals a token: a stolen backup without the key is useless.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ml_connector.config.models import ConnectorConfig
from ml_connector.errors import ConfigError
from ml_connector.jira.tokens import TokenSet
from ml_connector.logging import register_secret
from ml_connector.store import Store

KEY_ENV = "ML_CONNECTOR_KEY"
JIRA_OAUTH = "jira_oauth"


def key_file_for(config: ConnectorConfig, config_path: Path | None = None) -> Path:
    """``<database>.key`` for SQLite files; otherwise ``ml-connector.key`` beside the config file (or cwd)."""
    url = config.store.url or ""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        db = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        return db.with_name(db.name + ".key")
    base = config_path.parent if config_path is not None else Path.cwd()
    return base / "ml-connector.key"


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, or create it with mode 0600 (O_EXCL: two processes racing agree on one key)."""
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        return key
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(f"key file {path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    return key


def resolve_key(config: ConnectorConfig, *, key_file: Path | None = None, config_path: Path | None = None) -> bytes:
    if config.store.credentials_key is not None:
        return config.store.credentials_key.get_secret_value().encode()
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return from_env.strip().encode()
    return load_or_create_key(key_file or key_file_for(config, config_path))


class DbTokenStore:
    """A ``jira.tokens.TokenStore`` over the store's ``credentials`` table; ``save`` is one committed transaction."""

    def __init__(self, store: Store, key: bytes, *, name: str = JIRA_OAUTH) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"the credentials key is not a Fernet key (32 url-safe base64 bytes); check {KEY_ENV} or the key file"
            ) from None
        self._store = store
        self._name = name
        self._lock = threading.Lock()

    def load(self) -> TokenSet | None:
        with self._lock:
            blob = self._store.credentials.get(self._name)
        if blob is None:
            return None
        try:
            data = json.loads(self._fernet.decrypt(blob))
        except InvalidToken:
            raise ConfigError(
                f"stored credential {self._name!r} cannot be decrypted with this key; restore the original key "
                f"({KEY_ENV} or the key file) or run `ml-connector jira login` again"
            ) from None
        tokens = TokenSet.from_dict(data)
        register_secret(tokens.access_token)
        register_secret(tokens.refresh_token)
        return tokens

    def save(self, tokens: TokenSet) -> None:
        register_secret(tokens.access_token)
        register_secret(tokens.refresh_token)
        blob = self._fernet.encrypt(json.dumps(tokens.to_dict(), sort_keys=True).encode())
        with self._lock:
            self._store.credentials.put(self._name, blob)
