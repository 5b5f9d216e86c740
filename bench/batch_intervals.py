"""What intervals that follow their recent misses cost a batch forecast, at their steady
state: a model trained on the first ``--train-days`` of synthetic hourly meters forecasts
them at the end of ``--days``, so the whole 28-day window before the origin is out of
sample and is forecast again to rescale the intervals. The same chunk of series is
forecast by the model as registered and by the same model without the rule (its
intervals as calibrated), alternating, in one process (one Ray task's work).

    .venv/bin/python -m bench.batch_intervals [--series 200] [--days 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.batch_forecast import meters
from domain.jobs import ModelType
from pipeline.config import TrainingConfig
from pipeline.context import JobContext
from pipeline.forecasting.batch import forecast_chunk, load_history
from pipeline.graph.runner import run_in_process
from pipeline.models.artifacts import load_artifact
from pipeline.settings import PipelineSettings
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore

HORIZON = 24
PUT = {"timestamp_column": "timestamp", "target_column": "load_kw", "series_column": "meter"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200, help="one chunk's worth")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--train-days", type=int, default=21)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    store = FeatureStore(Location(str(root / "features")))
    data = meters(args.series, args.days)
    cut = data["timestamp"].min() + args.train_days * 24 * (data["timestamp"].diff().max())
    store.put("train", data[data["timestamp"] < cut], **PUT)
    store.put("now", data, **PUT)
    context = JobContext(
        job_id="bench",
        tenant_id="bench",
        model_type=ModelType.FORECAST,
        model_name="meters",
        config=TrainingConfig(feature_set="train", target_variable="load_kw", horizon=HORIZON),
    )
    settings = PipelineSettings(features_dir=str(store.root), artifacts_dir=str(root / "art"))
    saved, _ = run_in_process(context, settings)
    adapted = load_artifact(Location(saved.artifact_uri))
    metadata = {k: v for k, v in adapted.metadata.items() if k != "interval_adaptation"}
    static = replace(adapted, metadata=metadata)
    seconds: dict[str, list[float]] = {"adapted": [], "static": []}
    widths = {}
    for _ in range(args.repeats):
        for name, artifact in (("static", static), ("adapted", adapted)):
            started = time.perf_counter()
            history = load_history(store, artifact.metadata, "now", HORIZON, None)
            table = forecast_chunk(artifact, history, HORIZON)
            seconds[name].append(time.perf_counter() - started)
            widths[name] = float((table["q0.9"] - table["q0.1"]).mean())
    a, s = statistics.median(seconds["adapted"]), statistics.median(seconds["static"])
    print(
        f"{args.series} series, {args.days} days hourly, model trained on the first "
        f"{args.train_days}: batch forecast (read + forecast_chunk), median of "
        f"{args.repeats}: adapted {a:.2f} s, static {s:.2f} s, ratio {a / s:.2f}; "
        f"mean P10-P90 width adapted {widths['adapted']:.1f}, static {widths['static']:.1f}"
    )


if __name__ == "__main__":
    main()
