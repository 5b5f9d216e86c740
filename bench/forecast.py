"""Forecast quality against Nixtla mlforecast on real data, and the backtest's speed.

For each set (the real files of ``shared/data`` and ``bench/data``, each whole and cut
short: sub-daily ones to their last 12 weeks, daily ones to two years, weekly ones to
four; and the demo set ``forecast_basic``), at its horizon: a day of steps for
sub-daily sets, 7 days for daily ones, 4 weeks for weekly ones; a set of many series is
one model over all of them, scored on (series, timestamp) pairs:

- the service's default job and an HPO job (20 trials), submitted over HTTP after the
  set is imported through the service's own upload, scored on the test part it reports
  (``GET /ai/models/{id}/test-predictions``);
- mlforecast: ``MLForecast`` + ``lightgbm.LGBMRegressor()``; on sub-daily sets lags >=
  the horizon (the horizon, the horizon + 1, two days, a week), rolling mean and std over
  a day and a week of the horizon lag, day of week, month, day of year and time of day,
  and covariates as dynamic features; on daily and weekly sets its recursive default
  (``bench.forecast_mlforecast``); point forecasts from its own
  ``cross_validation(refit=False)``,
  quantiles from its conformal ``PredictionIntervals(n_windows, h)`` fitted once on the
  same history and walked forward with ``update`` (its fit-time conformity scores are
  out-of-sample; ``cross_validation`` recomputes them on windows it trained on);
- AutoGluon-TimeSeries, the higher anchor (``bench.forecast_autogluon``): no pretrained
  weights, its DirectTabular, RecursiveTabular, ETS and Theta models and their weighted
  ensemble, fitted once within the service's longer job's seconds (60 at least) on the
  history before the test part, then forecasting it from origins every horizon steps as
  mlforecast's windows;
- all scored on exactly the service's test (series, timestamp) pairs. mlforecast refuses
  missing targets, so it gets them interpolated; the scores use only real observations.

Then the backtest: one job with 5 windows against 5 plain jobs one after another.

Run: ``make bench-forecast`` (mlforecast pins pandas < 3, so it runs in .venv-bench;
AutoGluon pins mlforecast < 0.15, so it runs in .venv-autogluon; ``--no-autogluon``
skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import shutil
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from actors.settings import OrchestratorSettings
from bench.forecast_autogluon import autogluon_scores
from bench.forecast_data import (
    HELD_BACK,
    QUANTILES,
    REAL_FILES,
    SHARED_DATA,
    BenchSet,
    Scores,
    bench_sets,
    demo_set,
    held_back_sets,
    scores,
)
from bench.forecast_mlforecast import mlforecast_scores
from bench.service_client import Service
from db.settings import DatabaseSettings
from pipeline.settings import PipelineSettings
from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

API_PORT = 8766
WORKERS = 2
#: AutoGluon's time limit is the service's longer job on the set (the HPO job's), but at
#: least this: within the few seconds of a small set's default job it fits no model.
AUTOGLUON_MIN_SECONDS = 60.0


@dataclass
class SetResult:
    bench_set: BenchSet
    test_points: int
    default: Scores
    hpo: Scores | None
    mlforecast: Scores
    notes: list[str] = field(default_factory=list)
    autogluon: Scores | None = None


def job_config(bench_set: BenchSet, **extra: Any) -> dict[str, Any]:
    """A job on the uploaded set at its horizon (its series column came with the upload)."""
    return {
        "feature_set": bench_set.name,
        "target_variable": bench_set.target,
        "horizon": bench_set.horizon,
        **extra,
    }


def service_scores(table: pd.DataFrame, seconds: float) -> Scores:
    bounds = table[[f"q{q:g}" for q in QUANTILES]].to_numpy()
    result = scores(table["actual"].to_numpy(), table["predicted"].to_numpy(), bounds)
    result.seconds = seconds
    return result


# ----------------------------------------------------------------------------- runs


async def compare(
    service: Service,
    bench_set: BenchSet,
    trials: int,
    extra: dict[str, Any],
    autogluon: bool = True,
) -> SetResult:
    """``bench_set`` scored by the default job, an HPO job of ``trials`` (if any),
    mlforecast and (``autogluon``) AutoGluon within the seconds of the service's longer job
    (``AUTOGLUON_MIN_SECONDS`` at least); ``extra`` is added to both jobs' configs."""
    if bench_set.upload:
        await service.upload(bench_set)
    config = job_config(bench_set, **extra)
    job, seconds = await service.run(config, f"{bench_set.name}-default")
    test = await service.test_predictions(job["model_id"])
    default = service_scores(test, seconds)
    default.static_coverage_80 = (await service.metrics(job["model_id"])).get("static_coverage_80")
    for line in await service.log_lines(job["job_id"], "coverage_80 on the calibration windows"):
        print(f"  {bench_set.name} default: {line}", flush=True)
    hpo = None
    if trials:
        config = job_config(bench_set, **extra, enable_hpo=True, n_trials=trials)
        hpo_job, hpo_seconds = await service.run(config, f"{bench_set.name}-hpo")
        hpo_test = await service.test_predictions(hpo_job["model_id"])
        if not hpo_test[["unique_id", "ds"]].equals(test[["unique_id", "ds"]]):
            raise RuntimeError("the HPO job's test part differs from the default job's")
        hpo = service_scores(hpo_test, hpo_seconds)
        for line in await service.log_lines(hpo_job["job_id"], "over the validation windows"):
            print(f"  {bench_set.name} HPO: {line}", flush=True)
    reference, notes = await asyncio.to_thread(mlforecast_scores, bench_set, test)
    anchor = None
    if autogluon:
        limit = max(AUTOGLUON_MIN_SECONDS, default.seconds, hpo.seconds if hpo else 0.0)
        try:
            anchor, anchor_notes = await asyncio.to_thread(autogluon_scores, bench_set, test, limit)
            notes += anchor_notes
        except RuntimeError as error:  # reported, and the other sets still run
            notes.append(f"AutoGluon failed: {str(error).splitlines()[0]}")
    return SetResult(bench_set, len(test), default, hpo, reference, notes, anchor)


async def backtest_timing(service: Service, bench_set: BenchSet, windows: int) -> dict[str, float]:
    """One job with ``windows`` backtest windows against as many plain jobs in a row."""
    sequential = 0.0
    for number in range(windows):
        _, seconds = await service.run(job_config(bench_set), f"{bench_set.name}-seq{number}")
        sequential += seconds
    config = job_config(bench_set, backtest={"windows": windows})
    job, backtest = await service.run(config, f"{bench_set.name}-backtest")
    metrics = job["metrics"]
    return {
        "sequential": sequential,
        "backtest": backtest,
        "ratio": backtest / sequential,
        "mae_mean": metrics["backtest_mae_mean"],
        "mae_std": metrics["backtest_mae_std"],
    }


async def run_all(api_url: str, sets: list[BenchSet], args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=600) as client:
        service = Service(client)
        warm_up: dict[str, Any] = {
            "feature_set": "forecast_basic",
            "target_variable": "load_kw",
            "hyperparameters": {"n_estimators": 20},
        }
        await service.run(warm_up, "warm-up")  # warm the workers, as a running service is
        results = []
        for bench_set in sets:
            extra = json.loads(args.config)
            result = await compare(service, bench_set, args.trials, extra, args.autogluon)
            results.append(result)
            report_one(result)
        timing = None
        demo = next((s for s in sets if s.name == args.backtest_set), None)
        if args.backtest_windows and demo is not None:  # not among --held-back's sets
            timing = await backtest_timing(service, demo, args.backtest_windows)
    report(results, timing, args)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}"


def report_one(result: SetResult) -> None:
    s = result.bench_set
    line = (
        f"{s.name:<15} {len(s.data):>6} rows, {result.test_points:>5} test points: "
        f"default {result.default.mae:.4g} ({ratio(result.default.mae, result.mlforecast.mae)}x)"
    )
    if result.hpo:
        line += f", HPO {result.hpo.mae:.4g} ({ratio(result.hpo.mae, result.mlforecast.mae)}x)"
    line += f", mlforecast {result.mlforecast.mae:.4g}"
    if result.autogluon:
        line += f", AutoGluon {result.autogluon.mae:.4g}"
    print(line, flush=True)


def report(results: list[SetResult], timing: dict[str, float] | None, args: Any) -> None:
    print()
    print("MAE at each set's horizon on the service's test (series, timestamp) pairs (ratio to")
    print("mlforecast; goals: default <= 1.00, HPO <= 0.95)")
    print(
        f"{'set':<15} {'points':>6} {'default':>10} {'HPO':>10} {'mlforecast':>10}  "
        f"{'default/mlf':>11} {'HPO/mlf':>8}"
    )
    for r in results:
        hpo = f"{r.hpo.mae:>10.4g}" if r.hpo else f"{'-':>10}"
        hpo_ratio = ratio(r.hpo.mae, r.mlforecast.mae) if r.hpo else "-"
        print(
            f"{r.bench_set.name:<15} {r.test_points:>6} {r.default.mae:>10.4g} {hpo} "
            f"{r.mlforecast.mae:>10.4g}  {ratio(r.default.mae, r.mlforecast.mae):>11} "
            f"{hpo_ratio:>8}"
        )
    print()
    print("P10-P90 interval and weighted quantile loss (P10, P50, P90) of the default job as")
    print("served (static: the coverage of the calibrated interval before it follows its")
    print("misses) and of mlforecast's conformal intervals (goals on every set: coverage")
    print("0.77-0.83, WQL <= mlforecast's)")
    print(
        f"{'set':<15} {'coverage':>8} {'static':>8} {'width':>10} {'WQL':>8}   {'mlf cov':>8} "
        f"{'mlf width':>10} {'mlf WQL':>8}"
    )
    for r in results:
        d, m = r.default, r.mlforecast
        static = d.static_coverage_80 if d.static_coverage_80 is not None else math.nan
        print(
            f"{r.bench_set.name:<15} {d.coverage_80:>8.3f} {static:>8.3f} {d.width_80:>10.4g} "
            f"{d.wql:>8.5f}   {m.coverage_80:>8.3f} {m.width_80:>10.4g} {m.wql:>8.5f}"
        )
    anchored = [r for r in results if r.autogluon]
    if anchored:
        print()
        print("Against AutoGluon-TimeSeries, the higher anchor (tabular, ETS and Theta models and")
        print("their ensemble, no pretrained weights, within the HPO job's seconds or 60):")
        print("its MAE, the default job's MAE over it, its P10-P90 coverage and its WQL")
        print(
            f"{'set':<15} {'AutoGluon MAE':>13} {'default / AutoGluon MAE':>23} "
            f"{'AutoGluon cov':>13} {'AutoGluon WQL':>13}"
        )
        for r in anchored:
            a = r.autogluon
            assert a is not None
            print(
                f"{r.bench_set.name:<15} {a.mae:>13.4g} {ratio(r.default.mae, a.mae):>23} "
                f"{a.coverage_80:>13.3f} {a.wql:>13.5f}"
            )
    print()
    print("Seconds: default job / HPO job (created to completed, over HTTP) / mlforecast CV")
    for r in results:
        hpo = f"{r.hpo.seconds:.1f}" if r.hpo else "-"
        print(
            f"  {r.bench_set.name:<15} {r.default.seconds:7.1f} {hpo:>7} "
            f"{r.mlforecast.seconds:7.1f}   {'; '.join(r.notes)}"
        )
    if timing:
        print()
        print(
            f"Backtest on {args.backtest_set}: {args.backtest_windows} windows in one job "
            f"{timing['backtest']:.1f} s, {args.backtest_windows} plain jobs one after another "
            f"{timing['sequential']:.1f} s: ratio {timing['ratio']:.2f} (goal <= 0.75); "
            f"window MAE {timing['mae_mean']:.4g} +- {timing['mae_std']:.3g}"
        )
    defaults = [r.default.mae / r.mlforecast.mae for r in results]
    print()
    print(
        f"default/mlforecast: max {max(defaults):.3f}, geometric mean "
        f"{math.exp(statistics.mean(math.log(x) for x in defaults)):.3f}"
    )
    hpos = [r.hpo.mae / r.mlforecast.mae for r in results if r.hpo]
    if hpos:
        print(
            f"HPO/mlforecast: max {max(hpos):.3f}, geometric mean "
            f"{math.exp(statistics.mean(math.log(x) for x in hpos)):.3f}"
        )
    anchors = [r.default.mae / r.autogluon.mae for r in results if r.autogluon]
    if anchors:
        print(
            f"default/AutoGluon: max {max(anchors):.3f}, geometric mean "
            f"{math.exp(statistics.mean(math.log(x) for x in anchors)):.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sets",
        nargs="*",
        help=f"names among {', '.join(r.name for r in REAL_FILES)}, each cut short too "
        "(NAME_12w, NAME_2y or NAME_4y, where long enough), and forecast_basic (default: all)",
    )
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument(
        "--held-back",
        action="store_true",
        help=f"score only the held-back sets ({', '.join(r.name for r in HELD_BACK)}), which "
        "no choice was tuned on",
    )
    parser.add_argument("--trials", type=int, default=20, help="HPO trials; 0 skips HPO")
    parser.add_argument(
        "--no-autogluon",
        dest="autogluon",
        action="store_false",
        help="skip AutoGluon-TimeSeries (each set's fit takes its HPO job's seconds, 60 at least)",
    )
    parser.add_argument("--backtest-windows", type=int, default=5, help="0 skips the timing")
    parser.add_argument("--backtest-set", default="forecast_basic")
    parser.add_argument(
        "--config",
        default="{}",
        help='JSON added to every scored job\'s config, e.g. \'{"refit": "continued"}\'',
    )
    args = parser.parse_args()
    logging.getLogger("ray").setLevel(logging.WARNING)

    data_dir = Path(tempfile.mkdtemp(prefix="bench-forecast-"))
    try:
        pipeline = PipelineSettings(data_dir=data_dir)
        database_url = DatabaseSettings(data_dir=data_dir).url
        asyncio.run(prepare_storage(database_url, pipeline))
        sets = bench_sets(args.sets, args.data_dir)
        if not args.sets or "forecast_basic" in args.sets:
            sets.append(demo_set(data_dir))
        if args.held_back:
            sets = held_back_sets(args.data_dir)
        config = ServiceConfig(
            database_url=database_url,
            pipeline=pipeline,
            orchestrator=OrchestratorSettings(),
            api=ApiSettings(port=API_PORT, max_upload_mb=64),
        )
        connect(None, num_cpus=WORKERS)
        running = start(config)
        try:
            asyncio.run(run_all(running.api_url, sets, args))
        finally:
            stop(running)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
