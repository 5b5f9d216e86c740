"""What a second CPU gives this machine: the same work in one process, then in two at once.

This is the ceiling for every parallel speed-up measured here, such as the HPO benchmark's
c/a. If two busy processes each take ``slowdown`` times as long as one alone, two tasks
run side by side finish in ``slowdown / 2`` of their sequential time at best, before any
scheduling, serialisation or database cost.

Two kinds of work, alternating one and two processes ``--rounds`` times:
  python    a pure-Python loop (no memory traffic, no shared library)
  lightgbm  one HPO trial's training: forecast_basic, 100 rounds, one thread
Usage: ``python -m bench.cores [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.workload import CONFIG, prepared
from pipeline.config import TrainingConfig
from pipeline.features.preprocess import PreparedData
from pipeline.settings import PipelineSettings
from pipeline.store.demo import ensure_demo_feature_sets
from pipeline.store.feature_store import FeatureStore
from pipeline.training.fitting import fit

TRIAL = TrainingConfig.model_validate({**CONFIG, "hyperparameters": {"n_estimators": 100}})
_data: PreparedData | None = None


def _load(data_dir: Path) -> None:
    """Pool initializer: each process prepares the training data once, untimed."""
    global _data
    _data = prepared(data_dir, TRIAL)


def python_loop() -> None:
    total = 0
    for i in range(4_000_000):
        total += i * i


def lightgbm_trial() -> None:
    assert _data is not None
    fit(_data, TRIAL.lightgbm_params(), 0, num_threads=1)


WORK: dict[str, Callable[[], None]] = {"python": python_loop, "lightgbm": lightgbm_trial}


def timed(name: str) -> float:
    started = time.perf_counter()
    WORK[name]()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-cores-"))
    try:
        ensure_demo_feature_sets(FeatureStore(PipelineSettings(data_dir=data_dir).features_root))
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(2, initializer=_load, initargs=(data_dir,)) as pool:
            pool.map(timed, ["lightgbm", "lightgbm"])  # warm both processes
            print(f"{multiprocessing.cpu_count()} CPUs; {args.rounds} rounds of 1 and 2 processes")
            for name in WORK:
                alone: list[float] = []
                together: list[float] = []
                for _ in range(args.rounds):
                    alone.append(pool.apply(timed, (name,)))
                    together.extend(pool.map(timed, [name, name], chunksize=1))
                slowdown = statistics.median(together) / statistics.median(alone)
                print(
                    f"  {name:<8} alone {statistics.median(alone):.3f} s"
                    f"  two at once {statistics.median(together):.3f} s each"
                    f"  slowdown {slowdown:.2f}x  best parallel/sequential {slowdown / 2:.2f}"
                )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
