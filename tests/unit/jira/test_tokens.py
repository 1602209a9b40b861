from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from ml_connector.errors import ConfigError
from ml_connector.jira.tokens import FileTokenStore, MemoryTokenStore, TokenSet


def test_memory_store() -> None:
    store = MemoryTokenStore()
    assert store.load() is None
    tokens = TokenSet("a", "r", 10.0)
    store.save(tokens)
    assert store.load() == tokens and store.saves == 1


def test_file_store_round_trip_mode_and_no_temp_left(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "jira-tokens.json"
    store = FileTokenStore(path)
    assert store.load() is None
    store.save(TokenSet("access-1", "refresh-1", 123.5, scope="read", cloud_id="c"))
    store.save(TokenSet("access-2", "refresh-2", 456.0))
    assert FileTokenStore(path).load() == TokenSet("access-2", "refresh-2", 456.0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["jira-tokens.json"]


def test_file_store_concurrent_saves_leave_a_valid_file(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "t.json")

    def worker(n: int) -> None:
        for i in range(20):
            store.save(TokenSet(f"a{n}-{i}", f"r{n}-{i}", float(i)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loaded = store.load()
    assert loaded is not None and loaded.refresh_token is not None and loaded.refresh_token.endswith("-19")


def test_file_store_corrupt_file_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        FileTokenStore(path).load()


def test_token_set_repr_hides_tokens() -> None:
    tokens = TokenSet("secret-access", "secret-refresh", 100.0)
    assert "secret" not in repr(tokens)
