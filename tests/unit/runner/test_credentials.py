"""DbTokenStore: Fernet-encrypted OAuth tokens in the credentials table; key from env or a 0600 key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from ml_connector.errors import ConfigError
from ml_connector.jira.tokens import TokenSet
from ml_connector.runner import DbTokenStore, load_or_create_key
from ml_connector.store import Store


def test_round_trip_is_encrypted_at_rest(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 's.sqlite'}")
    key = load_or_create_key(tmp_path / "s.sqlite.key")
    tokens = DbTokenStore(store, key)
    assert tokens.load() is None
    grant = TokenSet("access-AAAA", "refresh-BBBB", expires_at=123.0, cloud_id="c1")
    tokens.save(grant)
    tokens.save(TokenSet("access-CCCC", "refresh-DDDD", expires_at=456.0, cloud_id="c1"))  # rotation replaces
    blob = store.credentials.get("jira_oauth")
    assert blob is not None and b"refresh-DDDD" not in blob and b"access" not in blob
    loaded = DbTokenStore(Store.open(f"sqlite:///{tmp_path / 's.sqlite'}"), key).load()  # a restarted daemon
    assert loaded == TokenSet("access-CCCC", "refresh-DDDD", expires_at=456.0, cloud_id="c1")
    with pytest.raises(ConfigError, match="cannot be decrypted") as info:
        DbTokenStore(store, Fernet.generate_key()).load()
    assert "DDDD" not in str(info.value)


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "db.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == first
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_key(path)
