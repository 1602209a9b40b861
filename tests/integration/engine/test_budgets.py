"""engine.budgets: a connector's clients pace on buckets shared through PostgreSQL with ``runner.rate_buckets:
postgres``, keyed by the far side's identity; ``local`` leaves each session pacing itself."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
import yaml
from conftest import require_pg, reset_postgres
from sqlalchemy import text

from ml_connector.config.loader import validate
from ml_connector.config.models import ConnectorConfig
from ml_connector.engine import Connector
from ml_connector.http.buckets import LocalBuckets
from ml_connector.http.pacing import QuotaGauge
from ml_connector.serve import ServerHandle, serve_in_thread
from ml_connector.sim.ifs import IfsSimOptions, create_app
from ml_connector.store import Store
from ml_connector.store.buckets import PostgresBuckets, SharedQuota

pytestmark = pytest.mark.postgres
PO_SET = "PurchaseOrderHandling.svc/PurchaseOrderSet"


@pytest.fixture
def ifs() -> Iterator[ServerHandle]:
    handle = serve_in_thread(create_app(IfsSimOptions(purchase_orders=5, work_orders=1)))
    yield handle
    handle.stop()


def _config(ifs_url: str, rate_buckets: str, jira_auth: dict[str, Any]) -> ConnectorConfig:
    text_ = resources.files("ml_connector.config").joinpath("templates/example.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text_)
    data["ifs"].update(url=ifs_url, realm="mlc", client_id="ml-connector", client_secret="sim-secret")
    data["jira"].update(url="http://127.0.0.1:9", simulator=True, webhook_secret="sim-webhook-secret", auth=jira_auth)
    data["store"] = {"url": require_pg()}
    data["runner"] = {"rate_buckets": rate_buckets}
    return validate(ConnectorConfig, data)


BASIC = {"kind": "basic", "email": "c@example.com", "api_token": "sim-api-token"}
OAUTH = {"kind": "oauth", "client_id": "app", "client_secret": "s", "cloud_id": "cloud-1"}


@pytest.fixture
def pg() -> Iterator[Store]:
    dsn = require_pg()
    reset_postgres(dsn)
    store = Store.open(dsn)
    yield store
    store.close()


def test_postgres_buckets_pace_ifs_under_its_token_url_and_client_id(ifs: ServerHandle, pg: Store) -> None:
    connector = Connector(config=_config(ifs.url, "postgres", BASIC), store=pg)
    try:
        assert isinstance(connector.ifs.session.pacer.buckets, PostgresBuckets)
        assert connector.ifs.count(PO_SET) == 5
        with pg.engine.connect() as conn:
            keys = conn.execute(text("SELECT key FROM rate_buckets")).scalars().all()
        assert keys == [f"ifs:{ifs.url}/auth/realms/mlc/protocol/openid-connect/token:ml-connector:requests"]
        jira_pacer = connector.jira.session.pacer
        assert isinstance(jira_pacer.buckets, PostgresBuckets)
        assert isinstance(jira_pacer.quota, QuotaGauge)  # Basic traffic has no points quota to share
    finally:
        connector.close()


def test_an_oauth_app_shares_its_points_quota_per_site(ifs: ServerHandle, pg: Store) -> None:
    connector = Connector(config=_config(ifs.url, "postgres", OAUTH), store=pg)
    try:
        assert isinstance(connector.jira.session.pacer.quota, SharedQuota)
    finally:
        connector.close()


def test_local_buckets_touch_no_table(ifs: ServerHandle, pg: Store) -> None:
    connector = Connector(config=_config(ifs.url, "local", BASIC), store=pg)
    try:
        assert isinstance(connector.ifs.session.pacer.buckets, LocalBuckets)
        assert connector.ifs.count(PO_SET) == 5
        with pg.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM rate_buckets")).scalar() == 0
    finally:
        connector.close()


def test_connectors_of_one_database_share_one_bucket_engine_until_the_last_closes(ifs: ServerHandle, pg: Store) -> None:
    """Many connections in one process: one small pool on the database for all their buckets, not one each."""
    from ml_connector.store import buckets as shared

    config = _config(ifs.url, "postgres", BASIC)
    first, second = (Connector(config=config, store=Store.open(config.store.url or "")) for _ in range(2))
    try:
        assert first.ifs.count(PO_SET) == 5 and second.ifs.count(PO_SET) == 5
        engine = first.ifs.session.pacer.buckets._db.engine  # type: ignore[attr-defined]
        assert second.ifs.session.pacer.buckets._db.engine is engine  # type: ignore[attr-defined]
        first.close()
        first.close()  # closing twice lets go once
        assert second.ifs.count(PO_SET) == 5  # the other connector's buckets still work
        assert any(held[0] is engine for held in shared._ENGINES.values())
    finally:
        second.close()
        for store in (first.store, second.store):
            store.close()
    assert not any(held[0] is engine for held in shared._ENGINES.values())  # the last one let go: pool closed


def test_metrics_count_the_shared_takes_and_show_the_shared_quota_left(ifs: ServerHandle, pg: Store) -> None:
    from ml_connector.http.ratelimit import QuotaReading
    from ml_connector.metrics import Metrics

    metrics = Metrics(connection="acme")
    connector = Connector(config=_config(ifs.url, "postgres", OAUTH), store=pg, observer=metrics)
    other = Connector(config=_config(ifs.url, "postgres", OAUTH), store=pg)  # another process, as far as PG knows
    metrics.quota_remaining = connector.quota_left
    try:
        assert connector.quota_left() is None  # no answer seen yet
        assert connector.ifs.count(PO_SET) == 5
        labels = {"connection": "acme", "system": "ifs", "key_class": "requests"}
        assert metrics.registry.get_sample_value("mlc_rate_budget_tokens_taken_total", labels) == 1
        quota = other.jira.session.pacer.quota
        quota.observe(QuotaReading(limit=65000, remaining=500, reset_in=600))
        quota.acquire()
        assert metrics.registry.get_sample_value("mlc_jira_quota_remaining", {"connection": "acme"}) == 499
    finally:
        connector.close()
        other.close()


def test_basic_auth_has_no_quota_gauge(ifs: ServerHandle, pg: Store) -> None:
    connector = Connector(config=_config(ifs.url, "postgres", BASIC), store=pg)
    try:
        assert connector.quota_left() is None
    finally:
        connector.close()


def test_the_run_process_shows_what_every_process_took_from_the_shared_buckets(ifs: ServerHandle, pg: Store) -> None:
    """Workers serve no /metrics: the run process reads their budget use back from the shared buckets."""
    from ml_connector.metrics import Metrics

    config = _config(ifs.url, "postgres", BASIC)
    run = Connector(config=config, store=pg)
    metrics = Metrics(connection="acme")
    metrics.shared_budget = run.shared_budget_use
    workers = [Connector(config=config, store=pg) for _ in range(2)]  # as two worker processes would
    try:
        assert run.shared_budget_use() == []  # nothing taken yet
        for worker in workers:
            assert worker.ifs.count(PO_SET) == 5
        labels = {"connection": "acme", "system": "ifs", "key_class": "requests"}
        assert metrics.registry.get_sample_value("mlc_rate_budget_shared_tokens_taken_total", labels) == 2
        waited = metrics.registry.get_sample_value("mlc_rate_budget_shared_waits_seconds_total", labels)
        assert waited == 0.0  # two takes of a full bucket promise no wait
        assert "openid-connect" not in metrics.render().decode()  # no key in any label
    finally:
        for connector in (run, *workers):
            connector.close()


def test_local_buckets_have_no_shared_use(ifs: ServerHandle, pg: Store) -> None:
    connector = Connector(config=_config(ifs.url, "local", BASIC), store=pg)
    try:
        assert connector.shared_budget_use() == []
    finally:
        connector.close()


def test_the_web_apps_metrics_serve_the_shared_use_and_quota_of_its_connection(ifs: ServerHandle, pg: Store) -> None:
    from fastapi.testclient import TestClient

    from ml_connector.http.ratelimit import QuotaReading
    from ml_connector.web import create_app

    config = _config(ifs.url, "postgres", OAUTH)
    served = Connector(config=config, store=pg)
    worker = Connector(config=config, store=pg)
    try:
        assert worker.ifs.count(PO_SET) == 5
        worker.jira.session.pacer.quota.observe(QuotaReading(limit=65000, remaining=321, reset_in=600))
        with TestClient(create_app(served)) as client:
            body = client.get("/metrics").text
        taken = 'mlc_rate_budget_shared_tokens_taken_total{connection="default",key_class="requests",system="ifs"}'
        assert f"{taken} 1.0" in body
        assert 'mlc_jira_quota_remaining{connection="default"} 321.0' in body
    finally:
        served.close()
        worker.close()
