"""The forecasting benchmark's data sets and how a forecast is scored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.scoring.intervals import quantile_metrics
from pipeline.settings import PipelineSettings
from pipeline.store.feature_store import FeatureStore

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BENCH_DATA = Path(__file__).resolve().parent / "data"
#: name, file, target column, directory (None: ``--data-dir``, shared/data by default).
REAL_FILES: tuple[tuple[str, str, str, Path | None], ...] = (
    ("hourly", "hourly_electricity.csv", "load", None),
    ("household", "household_power_30min.csv", "power_kw", None),
    ("traffic", "traffic_hourly.csv", "traffic_volume", BENCH_DATA),
    ("peyton", "peyton_manning_daily.csv", "log_views", BENCH_DATA),
)
#: The set kept back from every choice made on the others: run with ``--held-back``.
HELD_BACK = ("taylor", "taylor_halfhourly.csv", "demand_mw", BENCH_DATA)
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
    static_coverage_80: float | None = None


def bench_sets(names: Sequence[str] | None, data_dir: Path) -> list[BenchSet]:
    """Each real set whole and, where it has more than 12 weeks of sub-daily steps, cut to
    its last 12 weeks (a newly installed meter's history)."""
    sets = []
    for name, filename, column, directory in REAL_FILES:
        whole = read_set(name, filename, column, directory or data_dir)
        sets.append(whole)
        stamps = pd.to_datetime(whole.data["timestamp"])
        if whole.steps_per_day > 1 and stamps.max() - stamps.min() > SHORT_HISTORY:
            short = whole.data[stamps > stamps.max() - SHORT_HISTORY].reset_index(drop=True)
            sets.append(BenchSet(f"{name}_12w", short, column, whole.steps_per_day))
    return [s for s in sets if not names or s.name in names]


def held_back_set() -> BenchSet:
    name, filename, column, directory = HELD_BACK
    assert directory is not None
    return read_set(name, filename, column, directory)


def read_set(name: str, filename: str, column: str, directory: Path) -> BenchSet:
    data = pd.read_csv(directory / filename)
    stamps = pd.to_datetime(data["timestamp"])
    season = max(1, round(pd.Timedelta(days=1) / stamps.diff().median()))
    return BenchSet(name, data, column, season)


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
