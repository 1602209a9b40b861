"""The pacers of one connection's two clients, by ``runner.rate_buckets``.

``local`` (the default): each session paces itself in this process, as it always has. ``postgres``: the buckets,
the 429 holds and the Jira points quota (OAuth) live in the store's PostgreSQL database under the far side's
identity, so every process, and every connection with the same IFS client id or Jira site, shares one budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ml_connector.config.connections import JiraOAuth
from ml_connector.config.models import ConnectorConfig
from ml_connector.http.buckets import ifs_scope, jira_scope
from ml_connector.http.pacing import ENDPOINT, REQUESTS, Pacer
from ml_connector.ifs.auth import token_path
from ml_connector.store import Store
from ml_connector.store.buckets import PostgresBuckets, SharedQuota, acquire_engine, bucket_use, release_engine


@dataclass
class SharedPacers:
    """The IFS and Jira pacers on the process's shared-bucket engine (let go with the connector)."""

    ifs: Pacer
    jira: Pacer
    engine: Engine
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            release_engine(self.engine)


def budget_scopes(config: ConnectorConfig) -> dict[str, str]:
    """The far sides' identities a connection's buckets are named under, by system."""
    ifs = config.ifs
    return {
        "ifs": ifs_scope(f"{ifs.base_url}{token_path(ifs.realm)}", ifs.client_id),
        "jira": jira_scope(config.jira.site_url),
    }


def shared_budget_use(config: ConnectorConfig, engine: Engine) -> list[tuple[str, str, int, float]]:
    """(system, key class, tokens taken, seconds waited) summed over a connection's shared buckets: what every
    process took from its far sides' budgets (``http.pacing``'s key classes; no key leaves this function)."""
    system_of = {scope: system for system, scope in budget_scopes(config).items()}
    totals: dict[tuple[str, str], tuple[int, float]] = {}
    for scope, key, taken, waited in bucket_use(engine, list(system_of)):
        group = (system_of[scope], REQUESTS if key == "requests" else ENDPOINT)
        before = totals.get(group, (0, 0.0))
        totals[group] = (before[0] + taken, before[1] + waited)
    return [(system, key_class, n, w) for (system, key_class), (n, w) in sorted(totals.items())]


def shared_pacers(config: ConnectorConfig, store: Store) -> SharedPacers | None:
    """Pacers drawing on PostgreSQL with ``runner.rate_buckets: postgres``; None for ``local`` (sessions pace
    themselves)."""
    if config.runner.rate_buckets == "local":
        return None
    engine = acquire_engine(store.engine)
    buckets = PostgresBuckets(engine)
    ifs, jira = config.ifs, config.jira
    scopes = budget_scopes(config)
    ifs_pacer = Pacer(
        requests_per_minute=ifs.http.requests_per_minute,
        burst=ifs.http.burst,
        method_rates=ifs.http.method_rates,
        scope=scopes["ifs"],
        buckets=buckets,
    )
    site = scopes["jira"]
    quota = SharedQuota(engine, f"{site}:points") if isinstance(jira.auth, JiraOAuth) else None
    jira_pacer = Pacer(
        requests_per_minute=jira.http.requests_per_minute,
        burst=jira.http.burst,
        method_rates=jira.http.method_rates,
        scope=site,
        buckets=buckets,
        quota=quota,
    )
    return SharedPacers(ifs_pacer, jira_pacer, engine)
