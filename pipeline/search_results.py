"""What a search reports and returns: each finished trial, the study's tallies, and the
best trial with the parameters to retrain each member with.

Plain records (they cross Ray to the orchestrator and to the train stage), apart from
the search itself so the train stage can read a result without importing the search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.jobs import ExperimentStatus
from pipeline.summaries import SearchSummary


@dataclass(frozen=True)
class TrialReport:
    """One finished trial, as the orchestrator records it."""

    number: int
    state: ExperimentStatus  # COMPLETED, PRUNED or FAILED
    value: float | None
    params: dict[str, Any]
    best_iteration: int | None
    curve: list[float] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    #: Its validation MAE on each window of the validation part (``pipeline.search.window_errors``).
    window_errors: list[float] = field(default_factory=list)

    def validation_curve(self) -> list[tuple[int, float]]:
        """(boosting round, validation L1): every round when the trial ran to the end,
        else the rounds it reported to the pruner."""
        if self.curve:
            return list(enumerate(self.curve, start=1))
        return sorted(self.intermediate.items())


@dataclass(frozen=True)
class SearchProgress:
    """The study's tallies after a trial, for the job's status."""

    n_trials: int
    completed: int
    pruned: int
    failed: int
    best_value: float | None
    best_params: dict[str, Any] | None

    @property
    def finished(self) -> int:
        return self.completed + self.pruned + self.failed

    def as_metrics(self) -> dict[str, Any]:
        return {
            "trials_completed": self.completed,
            "trials_pruned": self.pruned,
            "trials_failed": self.failed,
            "best_value": self.best_value,
            "best_params": self.best_params,
        }


@dataclass(frozen=True)
class SearchResult:
    study_name: str
    storage: str
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_iteration: int
    progress: SearchProgress
    #: Per objective of the model's members: the LightGBM parameters to retrain with (fixed
    #: + the best trial's of that objective) and its rounds (None: no trial of that
    #: objective completed, so the retrain early-stops with the best trial's parameters).
    members: dict[str, tuple[dict[str, Any], int | None]]
    early_stopping_rounds: int
    #: Per objective whose default-parameter trial (the search's first) completed: the
    #: parameters a plain job trains it with (rounds None: early-stopped), which the
    #: model's members include beside the best trial's.
    defaults: dict[str, tuple[dict[str, Any], int | None]] = field(default_factory=dict)

    def summary(self) -> SearchSummary:
        """The study's tallies and best value are the progress's (as the job shows them)."""
        progress = self.progress
        return SearchSummary(
            study_name=self.study_name,
            storage=self.storage,
            best_trial=self.best_trial,
            best_value=progress.best_value,
            best_iteration=self.best_iteration,
            n_trials=progress.finished,
            trials_completed=progress.completed,
            trials_pruned=progress.pruned,
            trials_failed=progress.failed,
            best_params=progress.best_params,
        )
