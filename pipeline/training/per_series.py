"""One model per series: a multi-series set's series each trained on their own rows by
the ordinary train stage, and the rows of a forecast routed to their series' model.

Routing reads the ``series_id`` feature (a series' position in ``FeatureSpec.series``),
which the scaler leaves unscaled, so a bundle forecasts from the same feature rows as a
global model. Within one series that feature is constant: it costs its model nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from domain.errors import PipelineError
from pipeline.config import TrainingConfig
from pipeline.features.build import SERIES_FEATURE
from pipeline.features.preprocess import MIN_ROWS, PreparedData, Split
from pipeline.scoring.intervals import QuantileCalibration
from pipeline.scoring.points import validation_scores
from pipeline.summaries import SearchSummary, TrainSummary
from pipeline.training.train import TrainedModel, train

#: Series trained one after another by one one-CPU task: 10,000 meters make 400 tasks,
#: not 10,000 (a task costs tens of milliseconds; a small series' fit about as much).
SERIES_PER_TASK = 25


class SeriesModel(Protocol):
    """What the router asks of each series' model."""

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def predict_quantiles(self, X: np.ndarray, point: np.ndarray) -> np.ndarray | None: ...


P = TypeVar("P", bound=SeriesModel)


@dataclass(frozen=True)
class SeriesRouter(Generic[P]):
    """Models by series; each row of a feature matrix goes to its series' model."""

    series: tuple[str, ...]
    parts: tuple[P, ...]
    #: Each part's ``series_id`` value (its series' position in ``FeatureSpec.series``).
    codes: tuple[int, ...]
    #: The ``series_id`` column of the feature rows.
    column: int

    def groups(self, X: np.ndarray) -> list[tuple[P, np.ndarray]]:
        """Each part present in ``X`` with the indices of its rows."""
        index = {code: i for i, code in enumerate(self.codes)}
        codes = X[:, self.column]
        groups = []
        for code in np.unique(codes):
            part = index.get(int(code)) if math.isfinite(code) else None
            if part is None:
                raise PipelineError(f"no model for the series at position {code} of the model's")
            groups.append((self.parts[part], np.flatnonzero(codes == code)))
        return groups

    def apply(
        self, X: np.ndarray, call: Callable[[P, np.ndarray, np.ndarray], np.ndarray | None]
    ) -> np.ndarray | None:
        """``call(part, its rows of X, their indices)`` per part, reassembled in row order
        (None when the parts answer None)."""
        result: np.ndarray | None = None
        for part, rows in self.groups(X):
            answer = call(part, X[rows], rows)
            if answer is None:
                return None
            if result is None:
                result = np.empty((len(X), *np.shape(answer)[1:]))
            result[rows] = answer
        return result if result is not None else np.empty(0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        predicted = self.apply(X, lambda part, rows, _: part.predict(rows))
        assert predicted is not None  # a part's point forecast is never None
        return predicted

    def predict_quantiles(self, X: np.ndarray, point: np.ndarray) -> np.ndarray | None:
        return self.apply(X, lambda part, rows, at: part.predict_quantiles(rows, point[at]))


@dataclass(frozen=True)
class SeriesBundle:
    """Models trained one per series, offering what the evaluate and register stages
    read of one model (``pipeline.evaluation.forecaster.Forecaster``)."""

    router: SeriesRouter[TrainedModel]
    validation_predictions: np.ndarray
    validation_scores: dict[str, float]

    @property
    def models(self) -> dict[str, TrainedModel]:
        return dict(zip(self.router.series, self.router.parts, strict=True))

    @property
    def params(self) -> dict[str, Any]:
        """The series' shared LightGBM parameters (only their rounds differ)."""
        return dict(self.router.parts[0].params)

    @property
    def best_iteration(self) -> int:
        """The median series' early-stopped rounds."""
        return int(np.median([m.best_iteration for m in self.router.parts]))

    @property
    def curve(self) -> dict[str, list[float]]:
        """Each validation curve averaged over the series, as long as the shortest."""
        curves = [m.curve for m in self.router.parts]
        return {
            name: np.mean([c[name][: min(len(c[name]) for c in curves)] for c in curves], axis=0)
            .astype(float)
            .tolist()
            for name in curves[0]
        }

    @property
    def calibration(self) -> QuantileCalibration | None:
        """None: each series' model has its own."""
        return None

    @property
    def calibration_windows(self) -> dict[str, list[float]]:
        """None here: each series' model has its own."""
        return {}

    @property
    def search(self) -> SearchSummary | None:
        return None

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.router.predict(X)

    def predict_quantiles(self, X: np.ndarray, point: np.ndarray) -> np.ndarray | None:
        return self.router.predict_quantiles(X, point)

    def summary(self) -> TrainSummary:
        return TrainSummary.of(self)


def series_names(data: PreparedData) -> list[str]:
    """The set's series in ``series_id`` order.

    Raises:
        PipelineError: the set has one series only, or a series has too few training or
            validation rows for a model of its own.
    """
    names = data.spec.series
    if names is None or data.train.series is None or data.validation.series is None:
        raise PipelineError("per_series needs a feature set with a series column")
    short = [
        name
        for name in names
        if np.count_nonzero(data.train.series == name) < MIN_ROWS["train"]
        or np.count_nonzero((data.validation.series == name) & data.validation.normal)
        < MIN_ROWS["validation"]
    ]
    if short:
        raise PipelineError(
            f"{len(short)} series have too few rows for a model of their own (need "
            f"{MIN_ROWS['train']} training and {MIN_ROWS['validation']} validation rows "
            f"each, not labelled as anomalies), e.g. {short[:3]}; train one global model instead"
        )
    return list(names)


def series_data(data: PreparedData, name: str) -> PreparedData:
    """``data``'s rows of one series (same features, scaler and spec)."""
    return replace(
        data,
        train=_rows_of(data.train, name),
        validation=_rows_of(data.validation, name),
        test=_rows_of(data.test, name),
    )


def _rows_of(split: Split, name: str) -> Split:
    assert split.series is not None
    mask = split.series == name
    return Split(
        X=split.X[mask],
        y=split.y[mask],
        timestamps=split.timestamps[mask],
        series=split.series[mask],
        labels=None if split.labels is None else split.labels[mask],
        seasonal_naive=split.seasonal_naive[mask],
    )


def train_series(
    data: PreparedData, config: TrainingConfig, names: Sequence[str], num_threads: int = 1
) -> list[TrainedModel]:
    """A model for each of ``names``, one after another, each on its own rows."""
    return [train(series_data(data, name), config, num_threads) for name in names]


def bundle(
    data: PreparedData, names: Sequence[str], models: Sequence[TrainedModel]
) -> SeriesBundle:
    """The series' models as one, with their validation forecasts in ``data``'s row order."""
    assert data.spec.series is not None
    assert data.validation.series is not None
    positions = {name: i for i, name in enumerate(data.spec.series)}
    router = SeriesRouter(
        series=tuple(names),
        parts=tuple(models),
        codes=tuple(positions[name] for name in names),
        column=data.feature_names.index(SERIES_FEATURE),
    )
    validation = np.empty(len(data.validation.y))
    for name, model in zip(names, models, strict=True):
        validation[data.validation.series == name] = model.validation_predictions
    return SeriesBundle(router, validation, validation_scores(data.validation.y, validation))


def train_per_series(data: PreparedData, config: TrainingConfig, num_threads: int) -> SeriesBundle:
    """The train stage of a per-series job in one process (``pipeline.graph`` fans it out)."""
    names = series_names(data)
    return bundle(data, names, train_series(data, config, names, num_threads))
