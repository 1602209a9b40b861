"""/metrics for ``runner.kind: procrastinate``: queue depth, job latency and outcomes, read from the job tables.

Workers serve no web app, so what they did is read back from procrastinate's tables at scrape time (two grouped
queries) by the ``run`` process: right whichever worker ran the job.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, text

LATENCY_WINDOW_MINUTES = 10

_BY_STATUS = text(
    "SELECT queue_name, task_name, status::text, count(*) FROM procrastinate_jobs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
# deferred → started per start in the window (a retried job's restart counts from its first deferral).
_LATENCY = text(
    """
    SELECT j.queue_name,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - d.at)),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - d.at)),
           max(extract(epoch FROM s.at - d.at)),
           count(*)
      FROM procrastinate_events s
      JOIN procrastinate_events d ON d.job_id = s.job_id AND d.type = 'deferred'
      JOIN procrastinate_jobs j ON j.id = s.job_id
     WHERE s.type = 'started' AND s.at > now() - make_interval(mins => :minutes)
     GROUP BY j.queue_name ORDER BY 1
    """
)


class QueueCollector(Collector):
    """``mlc_jobs`` (jobs by queue, task and status: depth for todo/doing, outcome for the rest) and
    ``mlc_job_start_latency_seconds`` (deferred → started over the last minutes, by queue and quantile)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "mlc_jobs",
            "Queued jobs by queue (connection), task and status (todo and doing: depth; the others: outcomes kept).",
            labels=["queue", "task", "status"],
        )
        latency = GaugeMetricFamily(
            "mlc_job_start_latency_seconds",
            f"Seconds from deferral to start of the jobs started in the last {LATENCY_WINDOW_MINUTES} minutes.",
            labels=["queue", "quantile"],
        )
        started = GaugeMetricFamily(
            "mlc_jobs_started_recently", f"Jobs started in the last {LATENCY_WINDOW_MINUTES} minutes.", labels=["queue"]
        )
        try:
            with self.engine.connect() as conn:
                for row in conn.execute(_BY_STATUS):
                    jobs.add_metric([str(row[0]), str(row[1]), str(row[2])], float(row[3]))
                for row in conn.execute(_LATENCY, {"minutes": LATENCY_WINDOW_MINUTES}):
                    for quantile, value in (("0.5", row[1]), ("0.95", row[2]), ("1", row[3])):
                        latency.add_metric([str(row[0]), quantile], float(value))
                    started.add_metric([str(row[0])], float(row[4]))
        except Exception:  # a scrape must not fail on a database hiccup; the store gauges' error counter tells
            return
        yield jobs
        yield latency
        yield started


def register_queue_metrics(registry: CollectorRegistry, engine: Engine) -> None:
    registry.register(QueueCollector(engine))
