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
