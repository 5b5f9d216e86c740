"""The forecasting benchmark's data sets and how a forecast is scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.feature_store import FeatureStore
from pipeline.intervals import quantile_metrics
from pipeline.settings import PipelineSettings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_FILES = (
    ("hourly", "hourly_electricity.csv", "load"),
    ("household", "household_power_30min.csv", "power_kw"),
)
SHORT_HISTORY = pd.Timedelta(weeks=12)
QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class BenchSet:
    name: str
    data: pd.DataFrame  # timestamp, target[, covariates]
    target: str
    steps_per_day: int
    upload: bool = True

    @property
    def covariates(self) -> list[str]:
        return [c for c in self.data.columns if c not in ("timestamp", self.target)]


@dataclass
class Scores:
    mae: float
    coverage_80: float | None = None
    width_80: float | None = None
    wql: float | None = None
    seconds: float = 0.0


def bench_sets(names: Sequence[str] | None, data_dir: Path) -> list[BenchSet]:
    sets = []
    for name, filename, column in REAL_FILES:
        data = pd.read_csv(data_dir / filename)
        stamps = pd.to_datetime(data["timestamp"])
        season = round(pd.Timedelta(days=1) / stamps.diff().median())
        sets.append(BenchSet(name, data, column, season))
        short = data[stamps > stamps.max() - SHORT_HISTORY].reset_index(drop=True)
        sets.append(BenchSet(f"{name}_12w", short, column, season))
    return [s for s in sets if not names or s.name in names]


def demo_set(data_dir: Path) -> BenchSet:
    frame = FeatureStore(PipelineSettings(data_dir=data_dir).features_root).load("forecast_basic")
    data = frame.data.assign(timestamp=frame.data["timestamp"].dt.tz_localize(None))
    return BenchSet("forecast_basic", data, "load_kw", 24, upload=False)


def scores(actual: np.ndarray, point: np.ndarray, bounds: np.ndarray | None) -> Scores:
    result = Scores(mae=float(np.mean(np.abs(actual - point))))
    if bounds is not None:
        metrics = quantile_metrics(actual, bounds, QUANTILES)
        result.coverage_80 = metrics["coverage_80"]
        result.width_80 = metrics["interval_width_80"]
        result.wql = metrics["wql"]
    return result
