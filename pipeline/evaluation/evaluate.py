"""The evaluate stage: test-set accuracy against a seasonal-naive baseline, forecast
quantiles and their calibration, per-series accuracy, and anomalies."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.evaluation.forecaster import Forecaster
from pipeline.features.preprocess import PreparedFeatures
from pipeline.scoring.adaptation import ForecastRows, RecentMisses
from pipeline.scoring.anomalies import calibrate
from pipeline.scoring.detector import AnomalyDetector, Detection
from pipeline.scoring.intervals import QuantileCalibration, quantile_metrics
from pipeline.scoring.labelled import WEEK, label_scores
from pipeline.scoring.series import naive_mae, per_series, worst
from pipeline.summaries import EvaluateSummary

logger = logging.getLogger(__name__)

#: Series named in the job's log as the worst served.
WORST_SERIES_LOGGED = 5


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    predictions: np.ndarray
    detector: AnomalyDetector | None
    detection: Detection | None  # of the test rows
    calibration: QuantileCalibration | None = None
    bounds: np.ndarray | None = None  # one column per quantile, for the test rows
    series_metrics: pd.DataFrame | None = None
    adaptation: RecentMisses | None = None  # how ``bounds`` follow their recent misses

    def summary(self) -> EvaluateSummary:
        return EvaluateSummary(metrics=self.metrics)


def point_metrics(
    actual: np.ndarray, predicted: np.ndarray, naive: np.ndarray, naive_scale: float
) -> dict[str, float]:
    """MAE, RMSE, MAPE, R², the seasonal-naive MAE and MASE (finite ones only)."""
    mae = float(mean_absolute_error(actual, predicted))
    nonzero = actual != 0
    metrics = {
        "mae": mae,
        "rmse": float(np.sqrt(mean_squared_error(actual, predicted))),
        "mape": float(
            np.mean(np.abs((actual[nonzero] - predicted[nonzero]) / actual[nonzero])) * 100
        ),
        "r2": float(r2_score(actual, predicted)) if len(actual) > 1 else math.nan,
        "naive_mae": naive_mae(actual, naive),
        "mase": mae / naive_scale if naive_scale > 0 else math.nan,
    }
    return {name: value for name, value in metrics.items() if math.isfinite(value)}


def evaluate(
    model: Forecaster, data: PreparedFeatures, model_type: ModelType, config: TrainingConfig
) -> Evaluation:
    """Point metrics on the untouched test part; with quantiles, their coverage, widths,
    pinball losses and WQL, as served (following their recent misses,
    ``pipeline.scoring.adaptation``; ``static_`` scores: as calibrated); per series when
    the set has several; for anomaly models, the detector calibrated on the validation
    part (``pipeline.scoring.detector``), its alarms a week on the test part and, where the
    set has labels, its scores against them (``pipeline.scoring.labelled``)."""
    test = data.test
    predictions = model.predict(test.X)
    scale = data.naive_scale()
    metrics = point_metrics(test.y, predictions, test.seasonal_naive, scale)
    bounds = model.predict_quantiles(test.X, predictions)
    adaptation = None
    if bounds is not None:
        static = quantile_metrics(test.y, bounds, config.quantiles)
        adaptation = RecentMisses()
        bounds = adaptation.adapt(test_rows(data, predictions, bounds), tuple(config.quantiles))
        metrics.update(quantile_metrics(test.y, bounds, config.quantiles))
        metrics.update({f"static_{name}": static[name] for name in static if _scores_spread(name)})
    series_table = None
    scales = data.naive_scales()
    if test.series is not None and scales is not None:
        series_table = per_series(
            test.series, test.y, predictions, scales, bounds, config.quantiles
        )
        _log_worst(series_table)
    detector = detection = None
    if model_type is ModelType.ANOMALY:
        detector, detection = _detect(data, predictions, config, model)
        metrics.update(_anomaly_metrics(data, detection))
    logger.info(
        "test metrics: %s",
        ", ".join(f"{name}={value:.4f}" for name, value in metrics.items()),
    )
    return Evaluation(
        metrics,
        predictions,
        detector,
        detection,
        model.calibration,
        bounds,
        series_table,
        adaptation,
    )


def _scores_spread(metric: str) -> bool:
    return metric.startswith(("coverage_", "interval_width_")) or metric == "wql"


def test_rows(data: PreparedFeatures, predictions: np.ndarray, bounds: np.ndarray) -> ForecastRows:
    """The test part's forecasts, each made a horizon before its row, all out of sample."""
    test = data.test
    step = data.spec.step
    return ForecastRows(
        point=predictions,
        bounds=bounds,
        actual=test.y,
        timestamps=test.timestamps,
        series=test.series,
        lead=data.spec.horizon * step,
        step=step,
        out_of_sample_from=pd.Timestamp(test.timestamps.min()),
    )


def _log_worst(table: pd.DataFrame) -> None:
    rows = worst(table, WORST_SERIES_LOGGED)
    listed = "; ".join(
        f"{row.series} (MASE {row.mase:.3f}, MAE {row.mae:.4g})" for row in rows.itertuples()
    )
    logger.info("worst series of %d on the test part: %s", len(table), listed)


def anomaly_detector(
    data: PreparedFeatures, validation_predictions: np.ndarray, config: TrainingConfig
) -> AnomalyDetector:
    """The detector calibrated on the validation part's out-of-sample residuals, those of
    rows labelled as anomalies left out: an incident the team has labelled would otherwise
    set the tail, and its like would not be flagged again."""
    validation = data.validation
    residuals = np.where(validation.normal, validation.y - validation_predictions, np.nan)
    calibration = calibrate(
        residuals,
        validation.series,
        data.spec.step,
        data.spec.season,
        config.alarms_per_week,
        config.event_gap,
        validation.timestamps,
    )
    suppress = config.alarm_suppression
    detector = AnomalyDetector(
        calibration=calibration,
        threshold=config.alarm_score or calibration.threshold,
        gap=config.event_gap,
        suppress=data.spec.season if suppress is None else suppress,
    )
    stated = "as stated" if config.alarms_per_week is not None else "this cadence's default"
    logger.info(
        "anomaly threshold: a calibrated score of %.2f (%s)",
        detector.threshold,
        "the job's alarm_score"
        if config.alarm_score
        else f"{calibration.alarms_per_week:.3g} alarms a week per series, {stated}",
    )
    return detector


def _detect(
    data: PreparedFeatures, predictions: np.ndarray, config: TrainingConfig, model: Forecaster
) -> tuple[AnomalyDetector, Detection]:
    """The detector, and its detection on the test rows as a detection or ``predict``
    serves them (the registered metrics describe what users get): the validation rows
    count as fitted, as every row before the test part does when served, so their
    residuals are not in the test rows' trailing scale."""
    detector = anomaly_detector(data, model.validation_predictions, config)
    validation, test = data.validation, data.test
    series = (
        None
        if test.series is None or validation.series is None
        else np.concatenate([validation.series, test.series])
    )
    detection = detector.detect(
        np.concatenate([validation.y, test.y]),
        np.concatenate([model.validation_predictions, predictions]),
        np.concatenate([validation.timestamps, test.timestamps]),
        series,
        first=len(validation.y),
        in_sample=np.arange(len(validation.y) + len(test.y)) < len(validation.y),
        step=data.spec.step,
    )
    return detector, detection


def _anomaly_metrics(data: PreparedFeatures, detection: Detection) -> dict[str, float]:
    """The share of test rows in an event, events a week and, with labels, the scores
    against them."""
    test = data.test
    flags = detection.events.flags
    weeks = max(len(test.y), 1) * data.spec.step / WEEK
    metrics = {
        "anomaly_rate": float(flags.mean()),
        "events_per_week": len(detection.events.events) / weeks,
    }
    if test.labels is not None:
        metrics.update(label_scores(flags, test.labels, data.spec.step, test.series))
    return metrics
