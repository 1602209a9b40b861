"""/metrics for ``runner.kind: procrastinate``: queue depth, job latency and outcomes, read from the job tables.

Workers serve no web app, so what they did is read back from procrastinate's tables at scrape time (grouped queries
on one connection's queue) by the ``run`` process: right whichever worker ran the job. Each connection's collector
reads its own queue only and labels it ``connection``, so a ``run`` serving several connections (their registries
merged, web/deployment.py) or several ``run`` processes each serving some connections never count a job twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, Row, text

LATENCY_WINDOW_MINUTES = 10
QUANTILES = ("0.5", "0.95", "1")

_BY_STATUS = text(
    "SELECT task_name, status::text, count(*) FROM procrastinate_jobs WHERE queue_name = :queue "
    "GROUP BY 1, 2 ORDER BY 1, 2"
)
# The seconds between two events of each job whose later event falls in the window, as quantiles and a count:
# deferred -> started is the wait for a worker (a retried job's restart counts from its first deferral), started ->
# succeeded/failed the run itself.
_BETWEEN = """
    SELECT j.task_name,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM e.at - b.at)),
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM e.at - b.at)),
           max(extract(epoch FROM e.at - b.at)),
           count(*)
      FROM procrastinate_events e
      JOIN procrastinate_events b ON b.job_id = e.job_id AND b.type = '{begin}'
      JOIN procrastinate_jobs j ON j.id = e.job_id
     WHERE e.type IN ({end}) AND j.queue_name = :queue AND e.at > now() - make_interval(mins => :minutes)
       AND b.at <= e.at
     GROUP BY 1 ORDER BY 1
"""
_START_LATENCY = text(_BETWEEN.format(begin="deferred", end="'started'"))
_DURATION = text(_BETWEEN.format(begin="started", end="'succeeded', 'failed'"))
# The job waiting longest for a worker: due (scheduled_at passed, or none) and still todo.
_OLDEST = text(
    """
    SELECT CAST(extract(epoch FROM now() - min(GREATEST(d.at, COALESCE(j.scheduled_at, d.at)))) AS float8)
      FROM procrastinate_jobs j
      JOIN procrastinate_events d ON d.job_id = j.id AND d.type = 'deferred'
     WHERE j.queue_name = :queue AND j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
    """
)


class QueueCollector(Collector):
    """One connection's queue: ``mlc_jobs`` (by task and status: depth for todo/doing, outcome for the rest),
    ``mlc_job_start_latency_seconds`` and ``mlc_job_duration_seconds`` (quantiles over the last minutes, by task),
    ``mlc_jobs_started_recently`` and ``mlc_job_oldest_waiting_seconds``; every sample labelled ``connection``."""

    def __init__(self, engine: Engine, connection: str, queue: str) -> None:
        self.engine = engine
        self.connection = connection
        self.queue = queue

    def _families(self) -> dict[str, GaugeMetricFamily]:
        window = f"the last {LATENCY_WINDOW_MINUTES} minutes"
        by_task = ["connection", "task"]
        return {
            "jobs": GaugeMetricFamily(
                "mlc_jobs",
                "Queued jobs by connection (its queue), task and status (todo, doing: depth; others: outcomes kept).",
                labels=["connection", "task", "status"],
            ),
            "latency": GaugeMetricFamily(
                "mlc_job_start_latency_seconds",
                f"Seconds from deferral to start of the jobs started in {window}.",
                labels=[*by_task, "quantile"],
            ),
            "duration": GaugeMetricFamily(
                "mlc_job_duration_seconds",
                f"Seconds from start to end (succeeded or failed) of the jobs ended in {window}.",
                labels=[*by_task, "quantile"],
            ),
            "started": GaugeMetricFamily("mlc_jobs_started_recently", f"Jobs started in {window}.", labels=by_task),
            "oldest": GaugeMetricFamily(
                "mlc_job_oldest_waiting_seconds",
                "Seconds the longest-waiting due job has waited for a worker (0: none waits).",
                labels=["connection"],
            ),
        }

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        params = {"queue": self.queue, "minutes": LATENCY_WINDOW_MINUTES}
        me = self.connection
        try:
            with self.engine.connect() as conn:
                for row in conn.execute(_BY_STATUS, params):
                    families["jobs"].add_metric([me, str(row[0]), str(row[1])], float(row[2]))
                for row in conn.execute(_START_LATENCY, params):
                    self._quantiles(families["latency"], row)
                    families["started"].add_metric([me, str(row[0])], float(row[4]))
                for row in conn.execute(_DURATION, params):
                    self._quantiles(families["duration"], row)
                oldest = conn.execute(_OLDEST, params).scalar()
                families["oldest"].add_metric([me], max(0.0, float(oldest or 0.0)))
        except Exception:  # a scrape must not fail on a database hiccup; the store gauges' error counter tells
            return
        yield from families.values()

    def _quantiles(self, family: GaugeMetricFamily, row: Row[Any]) -> None:
        for i, quantile in enumerate(QUANTILES, start=1):
            family.add_metric([self.connection, str(row[0]), quantile], float(row[i]))


def register_queue_metrics(registry: CollectorRegistry, engine: Engine, connection: str, queue: str) -> None:
    registry.register(QueueCollector(engine, connection, queue))
