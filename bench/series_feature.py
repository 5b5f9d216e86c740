"""Does naming the series help one model serve many meters? Measured, not assumed.

Synthetic multi-meter sets (there is no real multi-series set in shared/data): hourly
meters from the demo generator, each scaled by its own factor (0.3-5x) and, in the second
kind, with its own daily shape. Each set is trained twice in this process with the
service's own stages and defaults: with the ``series_id`` category and without it. The
score is the mean over meters of MAE / mean |load| on the test part (scale-free, so large
meters do not dominate). Run: ``.venv/bin/python -m bench.series_feature``.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.evaluation.evaluate import evaluate
from pipeline.features.build import default_spec
from pipeline.features.preprocess import preprocess
from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.store.feature_store import FeatureStore
from pipeline.training.train import train

KINDS = ("scale", "scale and shape")
SIZES = ((10, 120), (40, 90))  # meters, days
SEEDS = (1, 2)


def meters(count: int, days: int, seed: int, shaped: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        meter = load_series(seed=100 + index + 1000 * seed, hours=24 * days)
        meter = meter[["timestamp", "load_kw", "temperature_c"]].copy()
        if shaped:
            hour = meter["timestamp"].dt.hour.to_numpy()
            peak = rng.integers(0, 24)
            meter["load_kw"] += 150 * rng.uniform(0, 1) * np.sin(2 * np.pi * (hour - peak) / 24)
        meter["load_kw"] *= rng.uniform(0.3, 5)
        frames.append(meter.assign(meter=f"m{index}"))
    return pd.concat(frames, ignore_index=True)


def relative_error(store: FeatureStore, table: pd.DataFrame, with_series: bool) -> float:
    store.put(
        "meters",
        table,
        timestamp_column="timestamp",
        target_column="load_kw",
        series_column="meter",
    )
    frame = store.load("meters")
    config = TrainingConfig(feature_set="meters", target_variable="load_kw", quantiles=[])
    spec = default_spec(frame, config)
    if not with_series:
        spec = dataclasses.replace(spec, series=None)
    data = preprocess(frame, config, spec)
    evaluation = evaluate(train(data, config, 2), data, ModelType.FORECAST, config)
    scored = (
        pd.DataFrame(
            {
                "series": data.test.series,
                "error": np.abs(data.test.y - evaluation.predictions),
                "level": np.abs(data.test.y),
            }
        )
        .groupby("series")[["error", "level"]]
        .mean()
    )
    return float((scored["error"] / scored["level"]).mean())


def main() -> None:
    store = FeatureStore(Location(str(Path(tempfile.mkdtemp(prefix="bench-series-")))))
    ratios = []
    print("mean relative test MAE per meter, without -> with the series category")
    for kind in KINDS:
        for count, days in SIZES:
            for seed in SEEDS:
                table = meters(count, days, seed, shaped=kind != "scale")
                without = relative_error(store, table, with_series=False)
                with_ = relative_error(store, table, with_series=True)
                ratios.append(with_ / without)
                print(
                    f"  {kind:<16} {count:>3} meters x {days} days, seed {seed}: "
                    f"{without:.4f} -> {with_:.4f}  ratio {with_ / without:.3f}",
                    flush=True,
                )
    print(
        f"ratio with/without: geometric mean "
        f"{np.exp(statistics.mean(np.log(ratios))):.3f}, worst {max(ratios):.3f}"
    )


if __name__ == "__main__":
    main()
