"""Does an unlabelled incident in the validation part mute later alarms? (issue 38)

For each real set of the forecasting benchmark (none of them labelled), an anomaly job
with the defaults (horizon 1) is trained in process twice:

- ``clean``: the set as it is; its test part's events a week and share of rows flagged
  are the false alarms of a set with no known anomaly (the default ``alarms_per_week``);
- ``incident``: the same set with a level shift of 4 sigma (sigma: the standard deviation
  of the target's step-to-step change) over a day of steps (7 steps for coarser sets) at
  80 % of its rows, inside the validation part the tail is calibrated on, and not
  labelled; and single spikes of 6 sigma at 92, 94, 96 and 98 % of its rows, in the test
  part, labelled (``is_anomaly``): the job's event recall, precision and false alarms a
  week on the test part.

A calibration that an incident does not move finds the spikes as often in the second as
it would without the incident, and raises about the clean set's false alarms. Sets of
many series (nox, cancellations) get the clean run alone: their events a week per series
and rows flagged.

    .venv/bin/python -m bench.anomaly_contamination [--sets hourly_12w,traffic]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.forecast_data import SHARED_DATA, BenchSet, bench_sets
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.evaluation.evaluate import evaluate
from pipeline.features.preprocess import preprocess
from pipeline.storage import Location
from pipeline.store.feature_store import LABEL_COLUMN, FeatureStore
from pipeline.training.train import train

SETS = (
    "hourly,hourly_12w,household_12w,traffic,traffic_12w,peyton,peyton_2y,meltemp,meltemp_2y,"
    "pr_deaths,pr_deaths_2y,gasoline,gasoline_4y,nox,cancellations"
)
INCIDENT_AT = 0.80
SPIKES_AT = (0.92, 0.94, 0.96, 0.98)


def with_incident(bench_set: BenchSet) -> pd.DataFrame:
    """The set with an unlabelled level shift in its validation part and labelled spikes
    in its test part (one series: rows are time steps)."""
    data = bench_set.data.copy()
    target = data[bench_set.target].to_numpy(dtype=float).copy()
    sigma = float(np.nanstd(np.diff(target)))
    start = int(INCIDENT_AT * len(data))
    target[start : start + max(bench_set.steps_per_day, 7)] += 4 * sigma
    labels = np.zeros(len(data), dtype=bool)
    for share in SPIKES_AT:
        row = int(share * len(data))
        target[row] += 6 * sigma
        labels[row] = True
    data[bench_set.target] = target
    data[LABEL_COLUMN] = labels
    return data


def job_metrics(
    store: FeatureStore, name: str, data: pd.DataFrame, target: str, series: str | None = None
) -> dict[str, float]:
    """The default anomaly job's test-part metrics on ``data``, trained in process."""
    store.put(name, data, timestamp_column="timestamp", target_column=target, series_column=series)
    config = TrainingConfig(feature_set=name, target_variable=target, horizon=1)
    prepared = preprocess(store.load(name), config)
    model = train(prepared, config, num_threads=1)
    return evaluate(model, prepared, ModelType.ANOMALY, config).metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=SETS)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    args = parser.parse_args()
    store = FeatureStore(Location(tempfile.mkdtemp(prefix="contamination-")))
    print(
        "| set | clean: events / week | rows flagged | incident: event recall | precision "
        "| false alarms / week |"
    )
    print("|---|---|---|---|---|---|")
    for bench_set in bench_sets(args.sets.split(","), args.data_dir):
        name, target = bench_set.name, bench_set.target
        clean = job_metrics(store, f"{name}_clean", bench_set.data, target, bench_set.series)
        if bench_set.series is not None:  # the incident is placed in one series' steps
            print(
                f"| {name} | {clean['events_per_week']:.2f} | {clean['anomaly_rate']:.1%} "
                "| - | - | - |",
                flush=True,
            )
            continue
        dirty = job_metrics(store, f"{name}_incident", with_incident(bench_set), target)
        recall = dirty.get("event_recall", 0.0)
        precision = dirty.get("event_precision", float("nan"))  # no flag: no precision
        alarms = dirty.get("false_alarms_per_week", 0.0)
        print(
            f"| {name} | {clean['events_per_week']:.2f} | {clean['anomaly_rate']:.1%} "
            f"| {recall:.2f} | {precision:.2f} "
            f"| {alarms:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
