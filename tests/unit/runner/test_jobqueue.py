"""The naming rules of the procrastinate runner: one key per connection and flow, one queue per connection."""

from __future__ import annotations

import pytest

from ml_connector.errors import ConfigError
from ml_connector.runner.jobqueue import JobQueue, conninfo, ensure_schema, lock_key, queue_for
from ml_connector.runner.jobworker import WorkerOptions


def test_lock_and_queue_names_carry_the_connection() -> None:
    assert lock_key("acme", "purchase_orders") == "acme:purchase_orders"
    assert lock_key("acme", "purchase_orders") != lock_key("beta", "purchase_orders")
    assert queue_for("acme") == "acme"


def test_conninfo_drops_the_sqlalchemy_driver_and_keeps_credentials() -> None:
    url = conninfo("postgresql+psycopg://mlc:s%40cret@db.example:5433/mlc?sslmode=require")
    assert url == "postgresql://mlc:s%40cret@db.example:5433/mlc?sslmode=require"
    with pytest.raises(ConfigError, match=r"store\.url"):
        conninfo("sqlite:///state.sqlite")


@pytest.mark.parametrize(("concurrency", "per_connection", "share"), [(1, None, 1), (2, None, 1), (4, None, 2),
                                                                       (5, None, 3), (4, 4, 4), (8, 1, 1)])
def test_a_connections_share_of_a_worker(concurrency: int, per_connection: int | None, share: int) -> None:
    assert WorkerOptions(concurrency=concurrency, per_connection=per_connection).share() == share


def test_a_missing_procrastinate_is_a_configuration_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "procrastinate" else real(name))
    for call in (lambda: ensure_schema("postgresql+psycopg://u@h/db"), lambda: JobQueue("postgresql+psycopg://u@h/db")):
        with pytest.raises(ConfigError, match=r"runner\.kind.*pip install 'ml-connector\[postgres\]'"):
            call()
