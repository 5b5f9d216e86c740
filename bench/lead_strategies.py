"""What a forecast's lead is worth: the measurement behind issue 39's first item.

A job's model forecasts every row from a horizon before it, and its test part is scored
that way. Forecasts made every horizon are 1 to h steps ahead, and a row one step ahead
could read yesterday's value. On each real set of bench/forecast.py (the demo set aside),
in process, with the default recipe (L2 + L1 boosters, early-stopped and refitted, one
thread), this trains one model per lead in ``leads`` (a dedicated direct model: every
lag at least its lead) and scores the test rows of the horizon model, each at a lead from
1 to h drawn by a hash of its time (equal shares, as forecasts made every horizon have),
forecast by:

- ``horizon``: the horizon model, as the service forecasts every lead now;
- ``per lead``: the dedicated model of the row's lead (of the smallest trained lead at or
  above it, on sub-daily sets, which train ``SUB_DAILY_LEADS`` only);
- ``[1, h]``, and the best pair and triple of leads: lead buckets, a row forecast by the
  model of the smallest bucket at or above its lead (the best ones chosen on the test
  part, so they flatter: they bound what buckets can give).

A single model over every lead (a lead feature, lags from each row's origin) was tried
too, with one lead per row and with the training rows copied at every lead: on the daily
sets it lost to the horizon model at the horizon's own lead, so it is not measured here.

Run: ``.venv/bin/python -m bench.lead_strategies [--sets peyton pr_deaths ...]``.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.forecast_data import SHARED_DATA, BenchSet, bench_sets, store_set
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.evaluation.evaluate import evaluate
from pipeline.features.preprocess import preprocess
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from pipeline.training.train import train

#: The leads trained on sub-daily sets (with their horizon): a model per lead of a day of
#: 10-minute steps would take 144 fits.
SUB_DAILY_LEADS = (1, 2, 3, 6, 12)


@dataclass(frozen=True)
class LeadForecasts:
    """One dedicated model's test forecasts and actuals, indexed by (series, timestamp)."""

    lead: int
    predicted: pd.Series
    actual: pd.Series
    seconds: float


def drawn_leads(stamps: pd.DatetimeIndex, step: pd.Timedelta, horizon: int) -> np.ndarray:
    """A lead from 1 to ``horizon`` per timestamp, by a hash of its time (splitmix64):
    the same time, the same lead; no time of day or weekday tied to one lead."""
    z = (stamps.asi8 // step.value).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return 1 + (z % np.uint64(horizon)).astype(np.int64)


def trained_leads(bench_set: BenchSet) -> list[int]:
    h = bench_set.horizon
    if bench_set.steps_per_day > 1:
        return sorted({lead for lead in SUB_DAILY_LEADS if lead < h} | {h})
    return list(range(1, h + 1))


def forecast_at(store: FeatureStore, bench_set: BenchSet, lead: int) -> LeadForecasts:
    """The test forecasts of a default job at horizon ``lead``."""
    config = TrainingConfig(
        feature_set=bench_set.name, target_variable=bench_set.target, horizon=lead, quantiles=[]
    )
    started = time.perf_counter()
    data = preprocess(store.load(bench_set.name), config)
    model = train(data, config, 1)
    predicted = evaluate(model, data, ModelType.FORECAST, config).predictions
    seconds = time.perf_counter() - started
    series = data.test.series if data.test.series is not None else np.zeros(len(predicted))
    index = pd.MultiIndex.from_arrays([series.astype(str), data.test.timestamps])
    return LeadForecasts(
        lead, pd.Series(predicted, index=index), pd.Series(data.test.y, index=index), seconds
    )


def bucketed(
    forecasts: dict[int, pd.Series], buckets: Sequence[int], leads: np.ndarray
) -> np.ndarray:
    """Each row's forecast by the model of the smallest bucket at or above its lead."""
    at = np.searchsorted(np.asarray(buckets), leads)
    table = np.column_stack([forecasts[b].to_numpy() for b in buckets])
    picked: np.ndarray = table[np.arange(len(leads)), at]
    return picked


def measure(store: FeatureStore, bench_set: BenchSet) -> dict[str, object]:
    store_set(store, bench_set)
    models = [forecast_at(store, bench_set, lead) for lead in trained_leads(bench_set)]
    rows = models[-1].predicted.index
    for model in models:
        rows = rows.intersection(model.predicted.index)
    forecasts = {m.lead: m.predicted.reindex(rows) for m in models}
    stamps = pd.DatetimeIndex(rows.get_level_values(1))
    actual = models[-1].actual.reindex(rows).to_numpy()
    h = bench_set.horizon
    leads = drawn_leads(stamps, bench_set.step, h)

    def mae(buckets: Sequence[int]) -> float:
        return float(np.mean(np.abs(bucketed(forecasts, buckets, leads) - actual)))

    inner = sorted(forecasts)[:-1]
    pairs = {(b, h): mae((b, h)) for b in inner}
    triples = {(a, b, h): mae((a, b, h)) for a, b in itertools.combinations(inner, 2)}
    best_pair = min(pairs, key=pairs.__getitem__)
    best_triple = min(triples, key=triples.__getitem__) if triples else best_pair
    horizon = mae((h,))
    return {
        "set": bench_set.name,
        "rows": len(rows),
        "h": h,
        "horizon": horizon,
        "per lead": mae(sorted(forecasts)) / horizon,
        "[1, h]": pairs.get((1, h), horizon) / horizon,
        "best pair": f"{list(best_pair)} {pairs[best_pair] / horizon:.3f}",
        "best triple": f"{list(best_triple)} {mae(best_triple) / horizon:.3f}",
        "seconds h": models[-1].seconds,
        "seconds lead 1": models[0].seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sets", nargs="*", help="names of bench/forecast.py's sets (default: all)"
    )
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sets = bench_sets(args.sets, args.data_dir)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-leads-") as root:
        store = FeatureStore(Location(root))
        for bench_set in sets:
            results.append(measure(store, bench_set))
            print(results[-1], flush=True)
    print(
        "\nTest MAE with each row at a drawn lead from 1 to h, as a ratio to the horizon "
        "model's\n(bucket sets chosen on the test part: a bound, not a plan)"
    )
    table = pd.DataFrame(results).set_index("set")
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    for column in ("per lead", "[1, h]"):
        ratios = table[column].to_numpy(dtype=float)
        print(f"{column} / horizon: geometric mean {math.exp(np.mean(np.log(ratios))):.3f}")


if __name__ == "__main__":
    main()
