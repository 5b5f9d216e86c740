"""Which intervals cover as promised where the static calibration does not? The default
model's P10-P90 on each real set's test part: as calibrated (static), rescaled by
adaptive conformal inference as actuals arrive, and rescaled by the misses of a recent
window (``pipeline.scoring.adaptation``, what the service serves; its default is marked).

Adaptive conformal inference on the interval's scale (Gibbs and Candès, 2021; the
"quantile tracking" of Angelopoulos et al., 2023) multiplies the half-widths around the
point forecast by exp(rate x (misses - expected misses)), counted per day of steps, over
every test point whose actual was known at the row's origin (a horizon before it). It is
a recursion over every actual since the test part began, which a prediction request does
not carry; the recent window needs only the actuals of its window.

    .venv-bench/bin/python -m bench.adaptive_intervals [--held-back]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.forecast_data import (
    QUANTILES,
    SHARED_DATA,
    BenchSet,
    bench_sets,
    held_back_sets,
    store_set,
)
from pipeline.config import TrainingConfig
from pipeline.evaluation.evaluate import test_rows
from pipeline.features.preprocess import preprocess
from pipeline.scoring.adaptation import DAY, RecentMisses
from pipeline.scoring.intervals import quantile_metrics
from pipeline.settings import PipelineSettings
from pipeline.store.demo import ensure_demo_feature_sets
from pipeline.store.feature_store import FeatureStore
from pipeline.training.train import train

MISS = 0.2  # the P10-P90 interval's nominal share of misses
THREADS = 2
#: Adaptive conformal inference's rates per day.
RATES = (0.1, 0.25)
#: Recent windows and priors (days); the service's default first.
WINDOWS = (RecentMisses(), RecentMisses(14 * DAY, 0 * DAY), RecentMisses(28 * DAY, 1 * DAY))


def adapted(
    actual: np.ndarray, point: np.ndarray, bounds: np.ndarray, delay: int, rate: float
) -> np.ndarray:
    """``bounds`` (P10, P50, P90 columns; one series in time order) with each row's
    half-widths scaled by the misses of the rows ``delay`` or more rows before it (at
    least ``delay`` steps: a gap only lengthens it); ``rate`` is per step."""
    out = bounds.copy()
    missed = np.zeros(len(actual))
    log_scale = 0.0
    for t in range(len(actual)):
        if t >= delay:
            log_scale += rate * (missed[t - delay] - MISS)
        scale = np.exp(log_scale)
        out[t, 0] = point[t] - scale * (point[t] - bounds[t, 0])
        out[t, 2] = point[t] + scale * (bounds[t, 2] - point[t])
        missed[t] = float(actual[t] < out[t, 0] or actual[t] > out[t, 2])
    return out


def rules() -> list[str]:
    return (
        ["static"]
        + [f"ACI {rate:g}/day" for rate in RATES]
        + [
            f"{rule.window / DAY:g}d prior {rule.prior / DAY:g}d"
            + (" *" if rule == RecentMisses() else "")
            for rule in WINDOWS
        ]
    )


def score_set(store: FeatureStore, bench_set: BenchSet) -> list[tuple[float, float]]:
    """(coverage, WQL) of the default model's test part under each of ``rules()``."""
    if bench_set.upload:
        store_set(store, bench_set)
    config = TrainingConfig(
        feature_set=bench_set.name,
        target_variable=bench_set.target,
        horizon=bench_set.horizon,
    )
    data = preprocess(store.load(bench_set.name), config)
    model = train(data, config, THREADS)
    point = model.predict(data.test.X)
    bounds = model.predict_quantiles(data.test.X, point)
    assert bounds is not None
    actual = data.test.y
    candidates = [bounds]
    series = data.test.series if data.test.series is not None else np.zeros(len(point))
    for rate in RATES:
        scaled = bounds.copy()
        for key in np.unique(series):
            at = np.flatnonzero(series == key)
            at = at[np.argsort(data.test.timestamps[at], kind="stable")]
            per_step = rate / bench_set.steps_per_day
            scaled[at] = adapted(actual[at], point[at], bounds[at], config.horizon, per_step)
        candidates.append(scaled)
    rows = test_rows(data, point, bounds)
    candidates += [rule.adapt(rows, tuple(config.quantiles)) for rule in WINDOWS]
    results = []
    for candidate in candidates:
        metrics = quantile_metrics(actual, candidate, QUANTILES)
        results.append((metrics["coverage_80"], metrics["wql"]))
    return results


def report(rows: Sequence[tuple[str, list[tuple[float, float]]]]) -> None:
    header = "".join(f"{name:>20}" for name in rules())
    print(f"{'set':<15}{header}")
    for name, results in rows:
        cells = "".join(f"{cov:>13.3f} {wql:.4f}" for cov, wql in results)
        print(f"{name:<15}{cells}")
    names = rules()
    inside = [sum(0.77 <= results[i][0] <= 0.83 for _, results in rows) for i in range(len(names))]
    print(
        "sets with coverage in 0.77-0.83: "
        + ", ".join(f"{name}: {n} of {len(rows)}" for name, n in zip(names, inside, strict=True))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--held-back", action="store_true", help="score only the held-back sets")
    args = parser.parse_args()
    store = FeatureStore(PipelineSettings(data_dir=Path(tempfile.mkdtemp())).features_root)
    ensure_demo_feature_sets(store)
    if args.held_back:
        sets = held_back_sets(args.data_dir)
    else:
        demo = store.load("forecast_basic").data
        sets = bench_sets(None, args.data_dir)
        sets.append(BenchSet("forecast_basic", demo, "load_kw", 24, 24, upload=False))
    rows = []
    for bench_set in sets:
        rows.append((bench_set.name, score_set(store, bench_set)))
        print(f"{bench_set.name}: {rows[-1][1]}", flush=True)
    print()
    report(rows)


if __name__ == "__main__":
    main()
