"""Persists what a running job's stages report: log lines, progress, experiment metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from db.records import JobRecord, MetricPoint, NewLog
from db.store import TrainingStore
from domain.jobs import ExperimentStatus, LogLevel
from pipeline.graph import LogLine, StageReport
from pipeline.hpo import SearchProgress, TrialReport


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
        self._recorded: set[str] = set()  # stages whose extra writes are done

    async def record(self, report: StageReport) -> None:
        """Persist one stage report: at most two transactions. Safe to call again with the
        same report after a failure (a retried write): nothing is written twice."""
        job_id = self._job.job_id
        lines = [to_new_log(job_id, line) for line in report.logs]
        lines.append(service_log(job_id, f"{report.stage} finished in {report.seconds:.3f}s"))
        if report.stage not in self._recorded:
            if report.stage == "train":
                await self._record_training(report.summary)
            elif report.stage == "search":
                self.metrics.update({k: v for k, v in report.summary.items() if k != "storage"})
            elif report.stage == "evaluate":
                await self._record_evaluation(report.summary["metrics"])
            self.metrics["training_time_seconds"] = round(
                self.metrics.get("training_time_seconds", 0.0) + report.seconds, 3
            )
            self._recorded.add(report.stage)
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


TRIAL_PREFIX = "trial "
SEARCH_EXPERIMENT = "search"
_TRIAL_STATUS = {
    "completed": ExperimentStatus.COMPLETED,
    "pruned": ExperimentStatus.PRUNED,
    "failed": ExperimentStatus.FAILED,
}
#: Progress while searching moves from the end of preprocess towards the search milestone.
SEARCH_PROGRESS = (0.4, 0.65)


class SearchRecorder:
    """Records an HPO job's trials as they finish: one experiment per trial, the best value
    so far on the job's search experiment, and the tallies on the job. A trial reported
    twice (a resumed search re-reports finished ones) is recorded once."""

    def __init__(self, store: TrainingStore, job: JobRecord) -> None:
        self._store = store
        self._job = job
        self._lock = asyncio.Lock()
        self._recorded: set[int] | None = None
        self._search_experiment: str | None = None

    async def record(self, trial: TrialReport, progress: SearchProgress) -> None:
        async with self._lock:
            await self._load()
            assert self._recorded is not None
            if trial.number in self._recorded:
                return
            await self._record(trial, progress)
            self._recorded.add(trial.number)

    async def _load(self) -> None:
        if self._recorded is not None:
            return
        experiments = await self._store.experiments_of_job(self._job.job_id)
        self._recorded = {
            int(e.name.removeprefix(TRIAL_PREFIX))
            for e in experiments
            if e.name.startswith(TRIAL_PREFIX)
        }
        self._search_experiment = next(
            (
                e.experiment_id
                for e in experiments
                if e.name == SEARCH_EXPERIMENT and e.status is ExperimentStatus.RUNNING
            ),
            None,
        )

    async def _record(self, trial: TrialReport, progress: SearchProgress) -> None:
        job_id = self._job.job_id
        points = [
            MetricPoint("validation_l1", value, step) for step, value in trial.validation_curve()
        ]
        if trial.value is not None:
            points.append(MetricPoint("best_validation_l1", trial.value, trial.best_iteration or 0))
        await self._store.create_experiment(
            job_id,
            f"{TRIAL_PREFIX}{trial.number}",
            trial.params,
            points,
            status=_TRIAL_STATUS[trial.state],
        )
        if self._search_experiment is None:
            self._search_experiment = await self._store.create_experiment(job_id, SEARCH_EXPERIMENT)
        if progress.best_value is not None:
            await self._store.log_metrics(
                self._search_experiment,
                [MetricPoint("best_value", progress.best_value, trial.number)],
            )
        start, end = SEARCH_PROGRESS
        value = f"{trial.value:.4f}" if trial.value is not None else "n/a"
        message = (
            f"trial {trial.number} {trial.state}: validation l1={value}, params {trial.params}"
        )
        if trial.error:
            message += f"; error: {trial.error}"
        level = LogLevel.WARNING if trial.state == "failed" else LogLevel.INFO
        await self._store.update_progress(
            job_id,
            start + (end - start) * min(1.0, progress.finished / progress.n_trials),
            "search",
            progress.as_metrics(),
            logs=[service_log(job_id, message, level, trial=trial.number)],
        )
