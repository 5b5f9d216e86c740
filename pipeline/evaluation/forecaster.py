"""What the evaluate and register stages read of a trained model: one LightGBM blend
(``pipeline.training.train.TrainedModel``) or one per series
(``pipeline.training.per_series.SeriesBundle``)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from pipeline.scoring.intervals import QuantileCalibration
from pipeline.summaries import SearchSummary, Trained, TrainSummary


class Forecaster(Trained, Protocol):
    """A trained model's forecasts and what its training learned."""

    @property
    def validation_predictions(self) -> np.ndarray:
        """Out-of-sample forecasts of the validation rows, in their order."""
        ...

    @property
    def calibration(self) -> QuantileCalibration | None:
        """The one quantile calibration of the model (None when it has several)."""
        ...

    @property
    def search(self) -> SearchSummary | None: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def predict_quantiles(self, X: np.ndarray, point: np.ndarray) -> np.ndarray | None: ...

    def summary(self) -> TrainSummary: ...
