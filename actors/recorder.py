"""Persists what a running job's stages report: log lines, progress, experiment metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from db.records import JobRecord, MetricPoint, NewLog
from db.store import TrainingStore
from domain.jobs import LogLevel
from pipeline.graph import LogLine, StageReport


def to_new_log(job_id: str, line: LogLine) -> NewLog:
    return NewLog(job_id, LogLevel(line.level), line.message, line.timestamp, line.stage)


def service_log(job_id: str, message: str, level: LogLevel = LogLevel.INFO, **extra: Any) -> NewLog:
    """A log line written by the orchestrator itself (stage ``orchestrator``)."""
    return NewLog(job_id, level, message, datetime.now(UTC), "orchestrator", extra or None)


class StageRecorder:
    """Writes one job's stage reports to the store, one batch per stage."""

    def __init__(self, store: TrainingStore, job: JobRecord) -> None:
        self._store = store
        self._job = job
        self._experiment_id: str | None = None
        self._best_iteration = 0
        self.metrics: dict[str, Any] = {}

    async def record(self, report: StageReport) -> None:
        """Persist one stage report: at most two transactions."""
        job_id = self._job.job_id
        lines = [to_new_log(job_id, line) for line in report.logs]
        lines.append(service_log(job_id, f"{report.stage} finished in {report.seconds:.3f}s"))
        if report.stage == "train":
            await self._record_training(report.summary)
        elif report.stage == "evaluate":
            await self._record_evaluation(report.summary["metrics"])
        self.metrics["training_time_seconds"] = round(
            self.metrics.get("training_time_seconds", 0.0) + report.seconds, 3
        )
        await self._store.update_progress(
            job_id, report.progress, report.stage, self.metrics, logs=lines
        )

    async def _record_training(self, summary: dict[str, Any]) -> None:
        job = self._job
        self._best_iteration = int(summary["best_iteration"])
        curve = [
            MetricPoint(f"validation_{name}", value, step)
            for name, values in summary["curve"].items()
            for step, value in enumerate(values, start=1)
        ]
        self._experiment_id = await self._store.create_experiment(
            job.job_id, f"{job.model_name} attempt {job.attempts}", summary["params"], curve
        )
        self.metrics["best_iteration"] = self._best_iteration

    async def _record_evaluation(self, metrics: dict[str, float]) -> None:
        self.metrics.update(metrics)
        if self._experiment_id is not None:
            await self._store.log_metrics(
                self._experiment_id,
                [MetricPoint(name, value, self._best_iteration) for name, value in metrics.items()],
            )
