"""What each stage says about its output (a ``StageReport``'s summary), one type per stage.

Small frozen records: they cross Ray with the report, and the orchestrator writes parts of
them to the job (its metrics, its experiments). Those that are stored as JSON (the search's
and the backtest's, also kept in a model's metadata) give that shape with ``as_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class LoadSummary:
    rows: int
    feature_set: str
    #: The version of the set the job read (its pinned version).
    version: str


@dataclass(frozen=True)
class PreprocessSummary:
    train_rows: int
    validation_rows: int
    test_rows: int
    features: int


@dataclass(frozen=True)
class SearchSummary:
    """The study and its best trial; ``n_trials`` counts the finished trials."""

    study_name: str
    storage: str
    best_trial: int
    best_value: float | None
    best_iteration: int
    n_trials: int
    trials_completed: int
    trials_pruned: int
    trials_failed: int
    best_params: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        """As a model's metadata keeps it."""
        return asdict(self)

    def job_metrics(self) -> dict[str, Any]:
        """As the job's metrics show it: all but where the study is stored."""
        return {k: v for k, v in self.as_dict().items() if k != "storage"}


@dataclass(frozen=True)
class TrainSummary:
    params: dict[str, Any]
    best_iteration: int
    #: Each validation curve by name (``l1``, ``median_l1``...), one value per round.
    curve: dict[str, list[float]]
    #: The blend's validation scores (``best_mae``, ``best_rmse``).
    validation: dict[str, float]
    #: Coverage and width of each central interval per calibration window, in time order.
    calibration_windows: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def of(cls, model: Trained) -> TrainSummary:
        return cls(
            params=model.params,
            best_iteration=model.best_iteration,
            curve=model.curve,
            validation=model.validation_scores,
            calibration_windows=model.calibration_windows,
        )


class Trained(Protocol):
    """What a trained model reports of its training (``TrainSummary.of``)."""

    @property
    def params(self) -> dict[str, Any]: ...

    @property
    def best_iteration(self) -> int: ...

    @property
    def curve(self) -> dict[str, list[float]]: ...

    @property
    def validation_scores(self) -> dict[str, float]: ...

    @property
    def calibration_windows(self) -> dict[str, list[float]]: ...


@dataclass(frozen=True)
class WindowResult:
    """One backtest window: its span, its training and test rows, and its test metrics."""

    number: int
    origin: str
    end: str
    train_rows: int
    test_rows: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BacktestSummary:
    windows: list[WindowResult]
    #: ``backtest_<metric>_mean`` and ``_std`` over the windows, and ``backtest_windows``.
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """As a model's metadata keeps it."""
        return {"windows": [asdict(w) for w in self.windows], "metrics": self.metrics}


@dataclass(frozen=True)
class EvaluateSummary:
    metrics: dict[str, float]


@dataclass(frozen=True)
class RegisterSummary:
    version: str
    artifact_uri: str


StageSummary = (
    LoadSummary
    | PreprocessSummary
    | SearchSummary
    | TrainSummary
    | BacktestSummary
    | EvaluateSummary
    | RegisterSummary
)
