"""What promoting on the same evidence adds to a job: the compare stage's seconds.

A default job (nothing set but the set, the target and the horizon: two members, conformal
P10/P50/P90) runs in this process (``run_in_process``) and is registered; a second
default job on the same set then scores it as its champion on its own test rows
(``compare_with_champion``, the compare stage's function), by MAE and by WQL (the latter
reads the 28 days before the test part as well, for the champion's interval adaptation).
Sets: the demo set ``forecast_basic`` (one series, two years hourly) and, with ``--meters``,
a synthetic multi-meter set of about that many rows (``bench/scale_data.py``).

    .venv/bin/python -m bench.promotion [--meters 350k] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

from bench.scale import parse_size
from bench.scale_data import meters_file
from domain.jobs import ModelType
from domain.names import model_id
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.evaluation.evaluate import evaluate
from pipeline.features.preprocess import preprocess
from pipeline.forecasting.champion import compare_with_champion
from pipeline.graph.runner import run_in_process
from pipeline.promotion import ChampionRef
from pipeline.settings import PipelineSettings
from pipeline.store.demo import ensure_demo_feature_sets
from pipeline.store.feature_store import FeatureStore
from pipeline.training.train import train


def context(feature_set: str, target: str, **config: object) -> JobContext:
    settings = TrainingConfig.model_validate(
        {"feature_set": feature_set, "target_variable": target, **config}
    )
    return JobContext(str(uuid.uuid4()), "bench", ModelType.FORECAST, "promotion", settings)


def measure(settings: PipelineSettings, feature_set: str, target: str, repeats: int) -> None:
    started = time.perf_counter()
    saved, reports = run_in_process(context(feature_set, target), settings)
    job_seconds = time.perf_counter() - started
    champion = ChampionRef(model_id("bench", "promotion", saved.version), saved.artifact_uri)
    stages = ", ".join(f"{r.stage} {r.seconds:.1f}" for r in reports)
    print(f"{feature_set}: default job {job_seconds:.1f} s ({stages})")
    for metric in ("mae", "wql"):
        job = context(feature_set, target, promote_champion=True, promotion={"metric": metric})
        store = FeatureStore(settings.features_root, job.tenant_id)
        data = preprocess(store.load(feature_set), job.config)
        evaluation = evaluate(train(data, job.config, 1), data, ModelType.FORECAST, job.config)
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            comparison = compare_with_champion(
                job, data, evaluation, settings.features_root, lambda: champion
            )
            times.append(time.perf_counter() - began)
        evidence = comparison.evidence
        print(
            f"  compare by {metric}: {statistics.median(times):.2f} s (median of {repeats}) "
            f"on {evidence['window']['rows']:,} rows, {evidence['paired_test']['windows']} days: "
            f"{evidence['challenger_score']:.4g} against {evidence['champion_score']:.4g}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", default=None, help="also a multi-meter set of ~N rows")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        settings = PipelineSettings(data_dir=Path(temp))
        store = FeatureStore(settings.features_root)
        ensure_demo_feature_sets(store)
        measure(settings, "forecast_basic", "load_kw", args.repeats)
        if args.meters:
            file = meters_file(parse_size(args.meters), Path(temp) / "data")
            frame = pd.read_parquet(file)
            store.put(
                "meters",
                frame,
                timestamp_column="timestamp",
                target_column="load_kw",
                series_column="meter",
            )
            measure(settings, "meters", "load_kw", args.repeats)


if __name__ == "__main__":
    main()
