"""Prometheus metrics: API calls, 429s and retries (as a ``CallObserver``), runs, and gauges read from the store.

Each ``Metrics`` owns its own ``CollectorRegistry`` so several connectors (and tests) in one process never collide.
Counters count what *this process* did; the store-derived gauges (records by state, failed queue, last success)
are read at scrape time, so they are right even when runs happen in another process (CLI, other workers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ml_connector.errors import ConnectorError, RateLimited

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FAILED_STATES = ("parked", "retry")  # the failed queue: the store's PARKED and RETRY states


# Metrics sits below the engine and the store: they report to it through these shapes, it imports neither.


class FinishedRun(Protocol):
    """A run as the engine reports it (``engine.report.RunReport``)."""

    @property
    def flow(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def counts(self) -> Mapping[str, int]: ...


class StoredRun(Protocol):
    """A finished run as the store keeps it (``store.RunRow``)."""

    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def counts(self) -> Mapping[str, int]: ...


class StoredFailures(Protocol):
    """Failed records of one flow and reason code (``store.FailureGroup``)."""

    @property
    def flow(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def count(self) -> int: ...


class StoredRecords(Protocol):
    def count_by_flow_state(self) -> dict[tuple[str, str], int]: ...
    def failure_groups(self, flow: str | None = None) -> Sequence[StoredFailures]: ...


class StoredRuns(Protocol):
    def last(self, flow: str, *, kind: str | None = None, succeeded: bool = False) -> StoredRun | None: ...


class StoredInbox(Protocol):
    def count(self, status: str | None = None) -> int: ...


class MetricsSource(Protocol):
    """What the scrape-time gauges read (``store.Store`` satisfies it)."""

    @property
    def records(self) -> StoredRecords: ...
    @property
    def runs(self) -> StoredRuns: ...
    @property
    def inbox(self) -> StoredInbox: ...


class _StoreCollector(Collector):
    """Gauges computed from the store on each scrape (bounded: grouped queries and one row per flow)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = self._metrics.store
        if store is None:
            return
        records = GaugeMetricFamily("mlc_records", "Records in the store by flow and state.", labels=["flow", "state"])
        failed = GaugeMetricFamily(
            "mlc_failed_queue_size", "Records waiting in the failed queue (parked or retry).", labels=["flow"]
        )
        last_success = GaugeMetricFamily(
            "mlc_last_success_timestamp_seconds", "End of the last successful run per flow.", labels=["flow", "kind"]
        )
        by_class = GaugeMetricFamily(
            "mlc_failed_records",
            "Records in the failed queue (parked or retry) by flow and error class (a reason code, never the value).",
            labels=["flow", "error_class"],
        )
        inbox = GaugeMetricFamily("mlc_webhook_inbox_pending", "Webhook events stored but not yet applied.")
        alerts = GaugeMetricFamily(
            "mlc_flow_alert",
            "1 while a flow's last outbound run raised the alert (jira_not_found: too many 404s, nothing recreated).",
            labels=["flow", "alert"],
        )
        try:
            by_flow_state = store.records.count_by_flow_state()
            flows = sorted({f for f, _ in by_flow_state} | set(self._metrics.flows))
            failed_by_flow = dict.fromkeys(flows, 0)
            for (flow, state), n in sorted(by_flow_state.items()):
                records.add_metric([flow, state], n)
                if state in FAILED_STATES:
                    failed_by_flow[flow] = failed_by_flow.get(flow, 0) + n
            for flow, n in failed_by_flow.items():
                failed.add_metric([flow], n)
            for group in store.records.failure_groups():  # one grouped query
                by_class.add_metric([group.flow, group.reason], group.count)
            for flow in flows:
                outbound = store.runs.last(flow, kind="outbound")
                alerted = outbound is not None and bool(outbound.counts.get("not_found_alert"))
                alerts.add_metric([flow, "jira_not_found"], 1.0 if alerted else 0.0)
                for kind in ("outbound", "writeback"):
                    run = store.runs.last(flow, kind=kind, succeeded=True)
                    if run is not None and run.finished_at is not None:
                        last_success.add_metric([flow, kind], run.finished_at.timestamp())
            inbox.add_metric([], store.inbox.count("pending"))
        except Exception:  # a scrape must not fail because the database hiccups; /readyz reports that
            self._metrics.scrape_errors.inc()
            return
        yield records
        yield failed
        yield by_class
        yield last_success
        yield inbox
        yield alerts


class _SharedBudgetCollector(Collector):
    """``mlc_rate_budget_shared_*``: what every process took from the connection's shared buckets and waited."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        read = self._metrics.shared_budget
        if read is None:
            return
        labels = ["connection", "system", "key_class"]
        taken = CounterMetricFamily(
            "mlc_rate_budget_shared_tokens_taken",
            "Tokens every process took from the connection's shared buckets (runner.rate_buckets: postgres).",
            labels=labels,
        )
        waited = CounterMetricFamily(
            "mlc_rate_budget_shared_waits_seconds",
            "Seconds every process's calls waited for tokens of the connection's shared buckets.",
            labels=labels,
        )
        try:
            for system, key_class, n, seconds in read():
                taken.add_metric([self._metrics.connection, system, key_class], float(n))
                waited.add_metric([self._metrics.connection, system, key_class], seconds)
        except Exception:  # the shared tables cannot be read: the store gauges' error counter tells
            self._metrics.scrape_errors.inc()
            return
        yield taken
        yield waited


class _QuotaCollector(Collector):
    """``mlc_jira_quota_remaining``: the points left in the hour, when known (an OAuth app that has had answers)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        read = self._metrics.quota_remaining
        if read is None:
            return
        try:
            remaining = read()
        except Exception:  # the shared row cannot be read: the store gauges' error counter tells
            self._metrics.scrape_errors.inc()
            return
        if remaining is None:
            return
        gauge = GaugeMetricFamily(
            "mlc_jira_quota_remaining",
            "Points of Jira's hourly quota (OAuth apps) left, as the last answers told less the calls sent since "
            "(shared by every process with runner.rate_buckets: postgres).",
            labels=["connection"],
        )
        gauge.add_metric([self._metrics.connection], float(remaining))
        yield gauge


class Metrics:
    """The connector's metrics; pass it as ``Connector(observer=...)`` so every API call is counted."""

    def __init__(
        self, *, store: MetricsSource | None = None, flows: Iterable[str] = (), connection: str = "default"
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.store = store
        self.flows = list(flows)
        self.connection = connection  # the budget and queue families carry it even when one connection is served
        # Jira's points quota left (None: not known, no OAuth); read at scrape time (shared: from PostgreSQL).
        self.quota_remaining: Callable[[], int | None] | None = None
        # Every process's use of the shared buckets, (system, key class, tokens, seconds waited); None: local buckets.
        self.shared_budget: Callable[[], Iterable[tuple[str, str, int, float]]] | None = None
        self._lock = threading.Lock()
        self.api_calls = Counter(
            "mlc_api_calls",
            "HTTP exchanges with IFS and Jira (status 0: no response).",
            ["system", "method", "status"],
            registry=self.registry,
        )
        self.api_seconds = Histogram(
            "mlc_api_call_duration_seconds",
            "Duration of HTTP exchanges.",
            ["system"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.rate_limited = Counter(
            "mlc_api_rate_limited", "Responses with status 429 by system.", ["system"], registry=self.registry
        )
        self.rate_limit_wait = Counter(
            "mlc_api_rate_limit_wait_seconds",
            "Seconds calls waited out rate limits (429) before resending, by system.",
            ["system"],
            registry=self.registry,
        )
        self.quota_points = Counter(
            "mlc_jira_points_used",
            "Points of Jira's hourly quota (OAuth apps) the calls used, as the quota headers told.",
            registry=self.registry,
        )
        self.retries = Counter(
            "mlc_api_retries",
            "Retries of transient errors by system and error class.",
            ["system", "error"],
            registry=self.registry,
        )
        self.records = Counter(
            "mlc_records_processed",
            "Records handled by runs, by flow and outcome.",
            ["flow", "outcome"],
            registry=self.registry,
        )
        self.runs = Counter(
            "mlc_runs", "Finished runs by flow, kind and status.", ["flow", "kind", "status"], registry=self.registry
        )
        self.run_seconds = Histogram(
            "mlc_run_duration_seconds",
            "Duration of runs by flow and kind.",
            ["flow", "kind"],
            registry=self.registry,
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.webhooks = Counter(
            "mlc_webhook_deliveries",
            "Jira webhook deliveries by result (accepted, duplicate, rejected, invalid).",
            ["result"],
            registry=self.registry,
        )
        self.budget_tokens = Counter(
            "mlc_rate_budget_tokens_taken",
            "Tokens this process took from the rate buckets, by connection, system and key class.",
            ["connection", "system", "key_class"],
            registry=self.registry,
        )
        self.budget_waits = Counter(
            "mlc_rate_budget_waits_seconds",
            "Seconds calls of this process waited for rate-budget tokens, 429 holds or the points quota.",
            ["connection", "system", "key_class"],
            registry=self.registry,
        )
        self.scrape_errors = Counter(
            "mlc_metrics_store_errors", "Scrapes where the store could not be read.", registry=self.registry
        )
        self.registry.register(_StoreCollector(self))
        self.registry.register(_QuotaCollector(self))
        self.registry.register(_SharedBudgetCollector(self))

    # -- CallObserver ----------------------------------------------------------------------------------------------

    def on_response(self, system: str, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.api_calls.labels(system, method.upper(), str(status)).inc()
        self.api_seconds.labels(system).observe(seconds)
        if status == 429:
            self.rate_limited.labels(system).inc()

    def on_retry(self, system: str, error: ConnectorError, delay: float) -> None:
        name = "RateLimited" if isinstance(error, RateLimited) else type(error).__name__
        self.retries.labels(system, name).inc()
        if isinstance(error, RateLimited):
            self.rate_limit_wait.labels(system).inc(delay)

    def on_quota_points(self, system: str, points: int) -> None:
        self.quota_points.inc(points)

    # -- BudgetObserver (http.pacing) ------------------------------------------------------------------------------

    def on_budget(self, system: str, key_class: str, tokens: int, waited: float) -> None:
        if tokens:
            self.budget_tokens.labels(self.connection, system, key_class).inc(tokens)
        if waited > 0:
            self.budget_waits.labels(self.connection, system, key_class).inc(waited)

    # -- runs ------------------------------------------------------------------------------------------------------

    def observe_run(self, report: FinishedRun, seconds: float) -> None:
        """Count a finished run (the daemon and the dashboard's background jobs call this); dry runs change nothing."""
        if report.dry_run:
            return
        self.runs.labels(report.flow, report.kind, report.status).inc()
        self.run_seconds.labels(report.flow, report.kind).observe(seconds)
        for outcome, n in report.counts.items():
            if n > 0:
                self.records.labels(report.flow, outcome).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ByConnection(Collector):
    """Every connection's metrics as one family per name, each sample labelled with its ``connection``."""

    def __init__(self, metrics: Mapping[str, Metrics]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for connection, metrics in self.metrics.items():
            for family in metrics.registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                merged.samples.extend(
                    sample._replace(labels={"connection": connection, **sample.labels}) for sample in family.samples
                )
        yield from families.values()


def render_connections(metrics: Mapping[str, Metrics]) -> bytes:
    """The exposition of several connections' metrics (one process serving them all), labelled by connection."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ByConnection(metrics))
    return generate_latest(registry)
