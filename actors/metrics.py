"""The orchestrator's metrics, kept twice: in a Prometheus registry the API serves at
``GET /metrics``, and as Ray metrics, which Ray exports to its Prometheus endpoint so the
Ray dashboard's Grafana panels can chart them.

Every update goes through ``ServiceMetrics``, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from ray.util import metrics as ray_metrics

from domain.jobs import ExperimentStatus, JobPriority

WAIT_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800)
#: A model's monitored figures, as of its latest scored forecast.
MODEL_HEALTH = {
    "live_mae": "MAE of the model's recent served forecasts against their actuals.",
    "live_coverage_80": "Share of actuals inside the P10-P90 interval of the latest forecast.",
    "drift_ratio": "Recent live MAE over the model's test MAE.",
}


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._queue_depth = Gauge(
            "training_queue_depth", "Queued jobs.", ("priority", "tenant"), registry=r
        )
        self._running = Gauge("training_running_jobs", "Jobs running now.", registry=r)
        self._finished = Counter(
            "training_jobs_finished", "Jobs that ended, by status.", ("status",), registry=r
        )
        self._wait = Histogram(
            "training_queue_wait_seconds",
            "Time from submit to start.",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self._stage = Histogram(
            "training_stage_duration_seconds",
            "Pipeline stage run time.",
            ("stage",),
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self._trials = Counter(
            "training_hpo_trials", "HPO trials finished, by outcome.", ("state",), registry=r
        )
        self._db_errors = Counter(
            "training_database_errors", "Database operations that failed.", registry=r
        )
        self._model_health = {
            name: Gauge(f"training_model_{name}", help_text, ("model_id",), registry=r)
            for name, help_text in MODEL_HEALTH.items()
        }
        self._ray = _RayMirror()
        self._known_queues: set[tuple[str, str]] = set()

    def set_queue(self, queued: Iterable[tuple[int, str]], running: int) -> None:
        """The queue as (priority, tenant) per queued job, and the running count."""
        depth: dict[tuple[str, str], int] = {}
        for priority, tenant in queued:
            key = (JobPriority(priority).label, tenant)
            depth[key] = depth.get(key, 0) + 1
        for key in self._known_queues - set(depth):
            depth[key] = 0  # a drained queue reads 0, not its last value
        for (label, tenant), count in depth.items():
            self._queue_depth.labels(label, tenant).set(count)
            self._ray.queue_depth.set(count, {"priority": label, "tenant": tenant})
        self._known_queues = {k for k, v in depth.items() if v}
        self._running.set(running)
        self._ray.running.set(running)

    def job_started(self, waited_seconds: float) -> None:
        self._wait.observe(waited_seconds)
        self._ray.wait.observe(waited_seconds)

    def job_finished(self, status: str) -> None:
        self._finished.labels(status).inc()
        self._ray.finished.inc(1, {"status": status})

    def stage_finished(self, stage: str, seconds: float) -> None:
        self._stage.labels(stage).observe(seconds)
        self._ray.stage.observe(seconds, {"stage": stage})

    def trial_finished(self, state: ExperimentStatus) -> None:
        self._trials.labels(state.value).inc()
        self._ray.trials.inc(1, {"state": state.value})

    def database_error(self) -> None:
        self._db_errors.inc()
        self._ray.db_errors.inc()

    def model_health(self, model_id: str, values: dict[str, float]) -> None:
        """A model's latest monitored figures (``MODEL_HEALTH``'s names; a figure it has
        not got is left out)."""
        for name, value in values.items():
            self._model_health[name].labels(model_id).set(value)
            self._ray.model_health[name].set(value, {"model_id": model_id})

    def text(self) -> str:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry).decode()


class _RayMirror:
    """The same metrics as Ray metrics (names without the ``_total`` Prometheus adds)."""

    def __init__(self) -> None:
        self.queue_depth = ray_metrics.Gauge(
            "training_queue_depth", "Queued jobs.", ("priority", "tenant")
        )
        self.running = ray_metrics.Gauge("training_running_jobs", "Jobs running now.")
        self.finished = ray_metrics.Counter(
            "training_jobs_finished", "Jobs that ended, by status.", ("status",)
        )
        self.wait = ray_metrics.Histogram(
            "training_queue_wait_seconds", "Time from submit to start.", _bounds(WAIT_BUCKETS)
        )
        self.stage = ray_metrics.Histogram(
            "training_stage_duration_seconds",
            "Pipeline stage run time.",
            _bounds(STAGE_BUCKETS),
            ("stage",),
        )
        self.trials = ray_metrics.Counter(
            "training_hpo_trials", "HPO trials finished, by outcome.", ("state",)
        )
        self.db_errors = ray_metrics.Counter(
            "training_database_errors", "Database operations that failed."
        )
        self.model_health = {
            name: ray_metrics.Gauge(f"training_model_{name}", help_text, ("model_id",))
            for name, help_text in MODEL_HEALTH.items()
        }


def _bounds(buckets: Sequence[float]) -> list[float]:
    return [float(b) for b in buckets]
