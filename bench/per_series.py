"""One model per series against one global model, on identical splits and test rows.

The set: the two real load series of ``shared/data`` as two meters of one hourly set,
the grid's aggregate load (about 1,000-2,000) and one household's power (about 0-5 kW,
30-minute readings averaged to hours, its timestamps moved by 209 whole weeks, weekdays
kept, to overlap the grid's 2012-2014). Default hyperparameters, two threads, in one
process. Usage: ``python -m bench.per_series [--data shared/data]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.evaluation.evaluate import evaluate
from pipeline.features.preprocess import preprocess
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from pipeline.training.per_series import train_per_series
from pipeline.training.train import train

SHIFT = pd.Timedelta(weeks=209)


def two_meters(data: Path) -> pd.DataFrame:
    grid = pd.read_csv(data / "hourly_electricity.csv", parse_dates=["timestamp"])
    house = pd.read_csv(data / "household_power_30min.csv", parse_dates=["timestamp"])
    hourly = house.set_index("timestamp")["power_kw"].resample("h").mean().reset_index()
    hourly["timestamp"] += SHIFT
    frame = pd.concat(
        [
            grid.rename(columns={"load": "y"}).assign(meter="grid"),
            hourly.rename(columns={"power_kw": "y"}).assign(meter="household"),
        ]
    )
    within = (frame["timestamp"] >= "2012-01-01") & (frame["timestamp"] < "2014-11-01")
    return frame[within]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        store = FeatureStore(Location(root))
        store.put(
            "two",
            two_meters(args.data),
            timestamp_column="timestamp",
            target_column="y",
            series_column="meter",
        )
        config = TrainingConfig(feature_set="two", target_variable="y")
        data = preprocess(store.load("two"), config)
        for name, fit in (("global", train), ("per_series", train_per_series)):
            started = time.perf_counter()
            model = fit(data, config, 2)
            seconds = time.perf_counter() - started
            evaluation = evaluate(model, data, ModelType.FORECAST, config)
            assert evaluation.series_metrics is not None
            metrics = evaluation.metrics
            print(
                f"{name}: {seconds:.0f} s; test MAE {metrics['mae']:.4g}, "
                f"WQL {metrics['wql']:.4f}, coverage_80 {metrics['coverage_80']:.3f};",
                "; ".join(
                    f"{row.series} MAE {row.mae:.4g} MASE {row.mase:.3f}"
                    for row in evaluation.series_metrics.itertuples()
                ),
            )


if __name__ == "__main__":
    main()
