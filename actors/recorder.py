"""Persists what a running job's stages report: log lines, progress, experiment metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from db.records import ExperimentRecord, JobRecord, MetricPoint, NewExperiment, NewLog
from domain.clock import utcnow
from domain.comparison import WINDOW_METRIC
from domain.jobs import ExperimentStatus, LogLevel
from pipeline.search_results import SearchProgress, TrialReport
from pipeline.stages import LogLine, Stage, StageReport
from pipeline.summaries import (
    BacktestSummary,
    EvaluateSummary,
    LoadSummary,
    SearchSummary,
    TrainSummary,
)

#: Backtest windows are experiments named ``backtest window <n>``.
BACKTEST_PREFIX = "backtest window "


class RunStore(Protocol):
    """Where the recorders write a running job's progress (``db.jobs.JobStore``)."""

    async def update_progress(
        self,
        job_id: str,
        progress: float,
        stage: str,
        metrics: Mapping[str, Any] | None = None,
        logs: Sequence[NewLog] = (),
        feature_set_version: str | None = None,
    ) -> bool: ...


class RunExperiments(Protocol):
    """Where the recorders write a running job's experiments (``ExperimentCatalog``)."""

    async def create_experiment(
        self,
        job_id: str,
        name: str,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[MetricPoint] = (),
        status: ExperimentStatus = ExperimentStatus.RUNNING,
    ) -> str: ...

    async def create_experiments(
        self, job_id: str, experiments: Sequence[NewExperiment]
    ) -> list[str]: ...

    async def log_metrics(self, experiment_id: str, points: Sequence[MetricPoint]) -> None: ...

    async def of_job(self, job_id: str) -> list[ExperimentRecord]: ...

    async def metric_history(self, experiment_id: str, name: str) -> list[MetricPoint]: ...


@dataclass(frozen=True)
class RunStores:
    """Where the recorders write, and the clock that stamps their lines."""

    jobs: RunStore
    experiments: RunExperiments
    clock: Callable[[], datetime] = utcnow


def to_new_log(job_id: str, line: LogLine) -> NewLog:
    return NewLog(job_id, LogLevel(line.level), line.message, line.timestamp, line.stage)


def service_log(
    job_id: str, message: str, at: datetime, level: LogLevel = LogLevel.INFO, **extra: Any
) -> NewLog:
    """A log line written by the orchestrator itself (stage ``orchestrator``) at ``at``
    (its clock's time)."""
    return NewLog(job_id, level, message, at, "orchestrator", extra or None)


class StageRecorder:
    """Writes one job's stage reports to the store, one batch per stage."""

    def __init__(self, stores: RunStores, job: JobRecord) -> None:
        self._stores = stores
        self._job = job
        self._experiment_id: str | None = None
        self._feature_set_version: str | None = None
        self._best_iteration = 0
        self.metrics: dict[str, Any] = {}
        self._recorded: set[Stage] = set()  # stages whose extra writes are done
        self._progress = 0.0
        self._stage: Stage | None = None  # the last stage recorded
        #: Stage reports and live scores are written one at a time, so a live write never
        #: lands after (and undoes) the stage it belongs to.
        self._writing = asyncio.Lock()

    async def record(self, report: StageReport) -> None:
        """Persist one stage report: at most two transactions. Safe to call again with the
        same report after a failure (a retried write): nothing is written twice."""
        async with self._writing:
            await self._record(report)

    async def _record(self, report: StageReport) -> None:
        job_id = self._job.job_id
        lines = [to_new_log(job_id, line) for line in report.logs]
        message = f"{report.stage} finished in {report.seconds:.3f}s"
        lines.append(service_log(job_id, message, self._stores.clock()))
        version = None
        if report.stage not in self._recorded:
            match report.summary:
                case LoadSummary() as summary:
                    version = self._feature_set_version = summary.version
                case TrainSummary() as summary:
                    await self._record_training(summary)
                case SearchSummary() as summary:
                    self.metrics.update(summary.job_metrics())
                case BacktestSummary() as summary:
                    await self._record_backtest(summary)
                case EvaluateSummary() as summary:
                    await self._record_evaluation(summary.metrics)
            self.metrics["training_time_seconds"] = round(
                self.metrics.get("training_time_seconds", 0.0) + report.seconds, 3
            )
            self._recorded.add(report.stage)
        await self._stores.jobs.update_progress(
            job_id,
            report.progress,
            report.stage,
            self.metrics,
            logs=lines,
            feature_set_version=version,
        )
        self._progress = max(self._progress, report.progress)
        self._stage = report.stage

    async def record_live(self, scores: dict[str, float]) -> None:
        """A running training's best validation scores so far (``best_mae``,
        ``best_rmse``); ignored once its stage report is recorded, which is final."""
        async with self._writing:
            if self._stage is None or Stage.TRAIN in self._recorded:
                return
            self.metrics.update(scores)
            await self._stores.jobs.update_progress(
                self._job.job_id, self._progress, self._stage, self.metrics
            )

    async def _record_training(self, summary: TrainSummary) -> None:
        job = self._job
        self._best_iteration = int(summary.best_iteration)
        self.metrics.update(summary.validation)  # the blend's final scores
        curve = [
            MetricPoint(f"validation_{name}", value, step)
            for name, values in summary.curve.items()
            for step, value in enumerate(values, start=1)
        ]
        curve += [  # step: the calibration window
            MetricPoint(f"calibration_{name}", value, window)
            for name, values in summary.calibration_windows.items()
            for window, value in enumerate(values, start=1)
        ]
        params = dict(summary.params)
        if self._feature_set_version is not None:  # the data, beside the model's knobs
            params["feature_set_version"] = self._feature_set_version
        self._experiment_id = await self._stores.experiments.create_experiment(
            job.job_id, f"{job.model_name} attempt {job.attempts}", params, curve
        )
        self.metrics["best_iteration"] = self._best_iteration

    async def _record_backtest(self, summary: BacktestSummary) -> None:
        """One completed experiment per window, with its span and metrics (once: a job
        re-run after an interruption keeps the windows its first attempt recorded)."""
        job = self._job
        recorded = {e.name for e in await self._stores.experiments.of_job(job.job_id)}
        experiments = [
            NewExperiment(
                f"{BACKTEST_PREFIX}{window.number}",
                {
                    "origin": window.origin,
                    "end": window.end,
                    "train_rows": window.train_rows,
                    "test_rows": window.test_rows,
                },
                [MetricPoint(name, value, 0) for name, value in window.metrics.items()],
                ExperimentStatus.COMPLETED,
            )
            for window in summary.windows
            if f"{BACKTEST_PREFIX}{window.number}" not in recorded
        ]
        if experiments:
            await self._stores.experiments.create_experiments(job.job_id, experiments)
        self.metrics.update(summary.metrics)

    async def _record_evaluation(self, metrics: dict[str, float]) -> None:
        self.metrics.update(metrics)
        if self._experiment_id is not None:
            await self._stores.experiments.log_metrics(
                self._experiment_id,
                [MetricPoint(name, value, self._best_iteration) for name, value in metrics.items()],
            )


TRIAL_PREFIX = "trial "
SEARCH_EXPERIMENT = "search"
#: Progress while searching moves from the end of preprocess towards the search milestone.
SEARCH_PROGRESS = (Stage.PREPROCESS.milestone, Stage.SEARCH.milestone)


class SearchRecorder:
    """Records an HPO job's trials as they finish: one experiment per trial, the best value
    so far on the job's search experiment, and the tallies on the job. A trial reported
    twice (a resumed search re-reports finished ones) is recorded once.

    Trials that finish while a write is under way are written together by the next one
    (three transactions per batch, not per trial), so a busy search costs the database,
    and the CPUs it shares with the trials, less. ``record`` returns once its trial is
    written."""

    def __init__(self, stores: RunStores, job: JobRecord) -> None:
        self._stores = stores
        self._job = job
        self._lock = asyncio.Lock()
        self._pending: list[tuple[TrialReport, SearchProgress]] = []
        self._recorded: set[int] | None = None
        #: Trials whose experiment rows exist (their other writes may have failed since).
        self._created: set[int] = set()
        self._search_experiment: str | None = None
        #: The best values an earlier attempt's search experiment holds, carried into this one's.
        self._carried: list[MetricPoint] = []

    async def record(self, trial: TrialReport, progress: SearchProgress) -> list[TrialReport]:
        """Write the trial (with any a failed call left); the trials written now for the
        first time (a resumed search reports its finished ones again)."""
        self._pending.append((trial, progress))
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return []  # an earlier caller wrote this trial with its own
            try:
                await self._load()
                assert self._recorded is not None
                fresh = {t.number: (t, p) for t, p in batch if t.number not in self._recorded}
                if fresh:
                    await self._record(list(fresh.values()))
                    self._recorded.update(fresh)
            except BaseException:
                self._pending[:0] = batch  # the next call retries those not written
                raise
            return [t for t, _ in fresh.values()]

    async def _load(self) -> None:
        if self._recorded is not None:
            return
        experiments = await self._stores.experiments.of_job(self._job.job_id)
        self._recorded = {
            int(e.name.removeprefix(TRIAL_PREFIX))
            for e in experiments
            if e.name.startswith(TRIAL_PREFIX)
        }
        self._created = set(self._recorded)
        searches = [e for e in experiments if e.name == SEARCH_EXPERIMENT]  # oldest first
        if searches and searches[-1].status is ExperimentStatus.RUNNING:
            self._search_experiment = searches[-1].experiment_id
        elif searches:  # a requeued job's search resumes: its curve goes on in the new one
            self._carried = await self._stores.experiments.metric_history(
                searches[-1].experiment_id, "best_value"
            )

    async def _record(self, batch: list[tuple[TrialReport, SearchProgress]]) -> None:
        job_id = self._job.job_id
        # Trials whose rows an earlier, failed call created get the rest of their writes.
        experiments = [_trial_experiment(t) for t, _ in batch if t.number not in self._created]
        if self._search_experiment is None:
            experiments.append(NewExperiment(SEARCH_EXPERIMENT, metrics=self._carried))
        if experiments:
            ids = await self._stores.experiments.create_experiments(job_id, experiments)
            self._created.update(trial.number for trial, _ in batch)
            if self._search_experiment is None:
                self._search_experiment = ids[-1]
        assert self._search_experiment is not None
        best = [  # by trials finished: trials end out of their numbers' order
            MetricPoint("best_value", progress.best_value, progress.finished)
            for _, progress in batch
            if progress.best_value is not None
        ]
        if best:
            await self._stores.experiments.log_metrics(self._search_experiment, best)
        latest = max((progress for _, progress in batch), key=lambda p: p.finished)
        start, end = SEARCH_PROGRESS
        await self._stores.jobs.update_progress(
            job_id,
            start + (end - start) * min(1.0, latest.finished / latest.n_trials),
            Stage.SEARCH,
            latest.as_metrics(),
            logs=[_trial_log(job_id, trial, self._stores.clock()) for trial, _ in batch],
        )


def _trial_experiment(trial: TrialReport) -> NewExperiment:
    points = [MetricPoint("validation_l1", value, step) for step, value in trial.validation_curve()]
    if trial.value is not None:
        points.append(MetricPoint("best_validation_l1", trial.value, trial.best_iteration or 0))
    points += [
        MetricPoint(WINDOW_METRIC, error, window)
        for window, error in enumerate(trial.window_errors, start=1)
    ]
    return NewExperiment(f"{TRIAL_PREFIX}{trial.number}", trial.params, points, trial.state)


def _trial_log(job_id: str, trial: TrialReport, at: datetime) -> NewLog:
    value = f"{trial.value:.4f}" if trial.value is not None else "n/a"
    message = f"trial {trial.number} {trial.state}: validation l1={value}, params {trial.params}"
    if trial.error:
        message += f"; error: {trial.error}"
    level = LogLevel.WARNING if trial.state is ExperimentStatus.FAILED else LogLevel.INFO
    return service_log(job_id, message, at, level, trial=trial.number)
