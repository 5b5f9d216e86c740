"""Deterministic demo feature sets, stored through the same path as user uploads.

``forecast_basic``: two years of hourly ``load_kw`` with daily, weekly and yearly
seasonality, temperature and humidity effects, holidays and AR(1) noise.
``anomaly_basic``: the same kind of series with labelled spikes, dips and level shifts.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pipeline.store.feature_store import LABEL_COLUMN, FeatureStore

DEMO_START = "2024-01-01"
DEMO_HOURS = 2 * 365 * 24
_HOLIDAYS = ("01-01", "05-01", "07-04", "12-25", "12-26", "11-28")


def load_series(seed: int, hours: int = DEMO_HOURS) -> pd.DataFrame:
    """An hourly electricity-load series with weather covariates."""
    rng = np.random.default_rng(seed)
    timestamps = pd.date_range(DEMO_START, periods=hours, freq="h", tz="UTC")
    hour = timestamps.hour.to_numpy()
    day_of_year = timestamps.dayofyear.to_numpy()
    yearly = np.cos(2 * np.pi * (day_of_year - 15) / 365.25)
    daily = np.sin(2 * np.pi * (hour - 9) / 24)

    temperature = 12 - 10 * yearly + 4 * daily + rng.normal(0, 1.5, hours)
    humidity = np.clip(65 + 15 * yearly - 10 * daily + rng.normal(0, 5, hours), 10, 100)

    is_holiday = timestamps.strftime("%m-%d").isin(_HOLIDAYS)
    is_weekend = timestamps.dayofweek.to_numpy() >= 5
    off_day = is_weekend | is_holiday
    profile = 0.55 * np.exp(-((hour - 8) ** 2) / 6) + 0.75 * np.exp(-((hour - 19) ** 2) / 8) + 0.25
    noise = np.zeros(hours)
    shocks = rng.normal(0, 8, hours)
    for i in range(1, hours):
        noise[i] = 0.8 * noise[i - 1] + shocks[i]

    load_kw = (
        400
        + 220 * profile * np.where(off_day, 0.7, 1.0)
        + 2.2 * (temperature - 18) ** 2
        + 0.6 * (humidity - 60)
        - np.where(off_day, 40, 0)
        + noise
    )
    return pd.DataFrame(
        {
            "timestamp": timestamps,
            "load_kw": load_kw.round(3),
            "temperature_c": temperature.round(2),
            "humidity_pct": humidity.round(2),
        }
    )


def with_anomalies(series: pd.DataFrame, seed: int, rate: float = 0.01) -> pd.DataFrame:
    """Inject labelled spikes, dips and short level shifts into ``load_kw``."""
    rng = np.random.default_rng(seed)
    data = series.copy()
    labels = np.zeros(len(data), dtype=bool)
    load = data["load_kw"].to_numpy().copy()
    starts = rng.choice(np.arange(200, len(data) - 10), size=int(len(data) * rate), replace=False)
    for start in starts:
        length = int(rng.integers(1, 4))
        factor = rng.choice([1.6, 1.8, 0.4, 0.3])
        load[start : start + length] *= factor
        labels[start : start + length] = True
    data["load_kw"] = load.round(3)
    data[LABEL_COLUMN] = labels
    return data


def ensure_demo_feature_sets(store: FeatureStore) -> list[str]:
    """Create the demo sets that are missing; returns the names it created."""
    demos: dict[str, Callable[[], pd.DataFrame]] = {
        "forecast_basic": lambda: load_series(seed=7),
        "anomaly_basic": lambda: with_anomalies(load_series(seed=11), seed=13),
    }
    created = []
    for name, make in demos.items():
        if not store.exists(name):
            store.put(name, make(), timestamp_column="timestamp", target_column="load_kw")
            created.append(name)
    return created
