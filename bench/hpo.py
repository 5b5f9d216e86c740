"""One hyperparameter search run three ways, side by side, on the demo feature set.

  (a) plain Optuna, sequential, in one process (same space, sampler, seed and pruner);
  (a') the same, with the data binned once for all trials, as the service's workers do;
  (b) Ray Tune + OptunaSearch with default settings (same space and seed), output off;
  (b') the same with the knobs Ray documents for many short trials (see ``TUNED_ENV`` and
       ``ray_tune``): trial actors reused, one trial per CPU, no automatic result loggers, the
       experiment state saved at the start and end only. Its environment variables are read by
       the driver when ``Tuner.fit`` builds its controller, not at import or ``ray.init`` (Ray
       2.60's source), so (b') sets them around its own run and (b), in this process too, keeps
       Tune's defaults;
  (c) this service's HPO job, submitted over HTTP (defaults: trials on every free CPU).

Prints the wall-clock ratios c/a, c/a', c/b and c/b', each way's best validation MAE, and the
per-trial overhead (wall x workers / trials - mean trial time).
Usage: ``python -m bench.hpo [--trials 40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import optuna
import ray
from ray import tune

from actors.settings import OrchestratorSettings
from bench.workload import CONFIG, prepared
from db.settings import DatabaseSettings
from pipeline.config import TrainingConfig
from pipeline.features.preprocess import PreparedData
from pipeline.search.hpo import journal_storage, open_study
from pipeline.search.trials import distribution, report_interval
from pipeline.settings import PipelineSettings
from pipeline.training.fitting import bin_data, fit
from serve_app.service import ServiceConfig, connect, prepare_storage, start, stop
from serve_app.settings import ApiSettings

API_PORT = 8791
WORKERS = 2
#: (c) is timed by the job's own ``completed_at``, so polling sooner would not shorten it,
#: only take CPU from the trials (each poll crosses Serve's proxy and a replica).
POLL_SECONDS = 1.0
#: (b')'s environment ("Environment variables used by Ray Tune"): no CSV, JSON or TensorBoard
#: logger callbacks (so Tune warns that it cannot read the trials' result files afterwards; the
#: final metrics are kept in memory), and no experiment-state snapshot between the first and the
#: final one (``auto`` takes one every 10 s or more).
TUNED_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_GLOBAL_CHECKPOINT_S": "3600"}


@dataclass(frozen=True)
class Outcome:
    name: str
    wall: float
    best_mae: float
    trial_seconds: list[float]
    workers: int
    pruned: int = 0

    @property
    def overhead(self) -> float:
        """Seconds each trial costs beyond its own training."""
        trials = len(self.trial_seconds)
        return self.wall * self.workers / trials - statistics.mean(self.trial_seconds)


def search_config(trials: int, rounds: int) -> TrainingConfig:
    return TrainingConfig.model_validate(job_config(trials, rounds))


def job_config(trials: int, rounds: int) -> dict[str, Any]:
    return {
        **CONFIG,
        "enable_hpo": True,
        "n_trials": trials,
        "hyperparameters": {"n_estimators": rounds},
    }


def plain_optuna(data_dir: Path, trials: int, rounds: int, bin_once: bool = False) -> Outcome:
    started = time.perf_counter()
    config = search_config(trials, rounds)
    data = prepared(data_dir, config)
    binned = bin_data(data, config.lightgbm_params()) if bin_once else None
    space = {k: distribution(v) for k, v in config.search_space().items()}
    study = open_study(optuna.storages.InMemoryStorage(), "plain", config)
    durations: list[float] = []
    every = report_interval(config)

    def objective(trial: optuna.Trial) -> float:
        began = time.perf_counter()
        params = {name: trial._suggest(name, dist) for name, dist in space.items()}

        def report(env: lgb.callback.CallbackEnv) -> None:
            step = env.iteration + 1
            if step % every == 0:
                trial.report(
                    next(r[2] for r in env.evaluation_result_list or [] if r[1] == "l1"), step
                )
                if trial.should_prune():
                    durations.append(time.perf_counter() - began)
                    raise optuna.TrialPruned()

        merged = {**config.lightgbm_params(), **params}
        model = fit(data, merged, config.early_stopping_rounds, 1, [report], binned)
        durations.append(time.perf_counter() - began)
        return model.curve["l1"][model.best_iteration - 1]

    study.optimize(objective, n_trials=trials)
    pruned = len(study.get_trials(states=(optuna.trial.TrialState.PRUNED,)))
    wall = time.perf_counter() - started
    name = "plain Optuna, binned once" if bin_once else "plain Optuna, sequential"
    return Outcome(name, wall, study.best_value, durations, 1, pruned)


def _tune_trainable(params: dict[str, Any], data: PreparedData, config: TrainingConfig) -> None:
    began = time.perf_counter()
    model = fit(data, {**config.lightgbm_params(), **params}, config.early_stopping_rounds, 1)
    tune.report(
        {"l1": model.curve["l1"][model.best_iteration - 1], "seconds": time.perf_counter() - began}
    )


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ray_tune(data_dir: Path, trials: int, rounds: int, tuned: bool = False) -> Outcome:
    """(b), or with ``tuned`` (b'). Both already pass the data by ``tune.with_parameters``,
    report once per trial and keep no checkpoints, as Tune's FAQ on bottlenecks advises."""
    from ray.tune.search.optuna import OptunaSearch

    with _environ(TUNED_ENV if tuned else {}):
        connect(None, num_cpus=WORKERS)
        try:
            started = time.perf_counter()
            config = search_config(trials, rounds)
            data = prepared(data_dir, config)
            space = {k: distribution(v) for k, v in config.search_space().items()}
            tuner = tune.Tuner(
                tune.with_parameters(_tune_trainable, data=data, config=config),
                tune_config=tune.TuneConfig(
                    search_alg=OptunaSearch(space=space, metric="l1", mode="min", seed=42),
                    num_samples=trials,
                    # A trial runs in the actor of a finished one (function trainables
                    # implement ``reset_config``); at most one trial per CPU, which also lets
                    # Tune keep that many pending instead of 1 for a searcher like Optuna's.
                    reuse_actors=tuned,
                    max_concurrent_trials=WORKERS if tuned else None,
                ),
                run_config=tune.RunConfig(
                    storage_path=str(data_dir / ("tune-tuned" if tuned else "tune")), verbose=0
                ),
            )
            results = tuner.fit()
            wall = time.perf_counter() - started
        finally:
            ray.shutdown()
    metrics = [results[i].metrics or {} for i in range(len(results))]
    return Outcome(
        "Ray Tune, short-trial knobs" if tuned else "Ray Tune + OptunaSearch",
        wall,
        min(m["l1"] for m in metrics),
        [m["seconds"] for m in metrics],
        WORKERS,
    )


async def _run_job(api_url: str, trials: int, rounds: int) -> tuple[str, float]:
    body = {
        "tenant_id": "bench",
        "model_type": "forecast",
        "model_name": "bench_hpo",
        "config": job_config(trials, rounds),
    }
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        submitted = datetime.now(UTC)
        job_id = (await client.post("/ai/training/jobs/start", json=body)).json()["job_id"]
        while True:
            job = (await client.get(f"/ai/training/jobs/{job_id}")).json()
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            await asyncio.sleep(POLL_SECONDS)
    if job["status"] != "completed":
        raise RuntimeError(f"the HPO job ended {job['status']}: {job['error_message']}")
    return job_id, (datetime.fromisoformat(job["completed_at"]) - submitted).total_seconds()


def service(data_dir: Path, trials: int, rounds: int) -> Outcome:
    config = ServiceConfig(
        database_url=DatabaseSettings(data_dir=data_dir).url,
        pipeline=PipelineSettings(data_dir=data_dir),
        orchestrator=OrchestratorSettings(),
        api=ApiSettings(port=API_PORT),
    )
    connect(None, num_cpus=WORKERS)
    running = start(config)
    try:
        asyncio.run(
            _run_job(running.api_url, 2, rounds)
        )  # warm the workers, as a running service is
        job_id, wall = asyncio.run(_run_job(running.api_url, trials, rounds))
    finally:
        stop(running)
    study = optuna.load_study(
        study_name=job_id, storage=journal_storage(data_dir / "studies" / f"{job_id}.journal")
    )
    seconds = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in study.trials
        if t.datetime_complete and t.datetime_start
    ]
    pruned = len(study.get_trials(states=(optuna.trial.TrialState.PRUNED,)))
    return Outcome("service HPO job over HTTP", wall, study.best_value, seconds, WORKERS, pruned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=100, help="boosting rounds per trial")
    parser.add_argument("--skip-tune", action="store_true", help="skip (b) and (b')")
    args = parser.parse_args()
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    data_dir = Path(tempfile.mkdtemp(prefix="bench-hpo-"))
    try:
        asyncio.run(
            prepare_storage(
                DatabaseSettings(data_dir=data_dir).url, PipelineSettings(data_dir=data_dir)
            )
        )
        a = plain_optuna(data_dir, args.trials, args.rounds)
        a_binned = plain_optuna(data_dir, args.trials, args.rounds, bin_once=True)
        b = None if args.skip_tune else ray_tune(data_dir, args.trials, args.rounds)
        b_tuned = None if args.skip_tune else ray_tune(data_dir, args.trials, args.rounds, True)
        c = service(data_dir, args.trials, args.rounds)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    print(
        f"{args.trials} trials on forecast_basic ({args.rounds} rounds max, early stopping 50), "
        "2 CPUs"
    )
    outcomes = (("(a)", a), ("(a')", a_binned), ("(b)", b), ("(b')", b_tuned), ("(c)", c))
    for label, outcome in outcomes:
        if outcome is None:
            continue
        print(
            f"  {label:<4} {outcome.name:<27} wall {outcome.wall:6.2f} s"
            f"  best MAE {outcome.best_mae:.4f}  pruned {outcome.pruned:2d}"
            f"  mean trial {statistics.mean(outcome.trial_seconds):.3f} s"
            f"  overhead/trial {outcome.overhead:+.3f} s"
        )
    print(f"c/a = {c.wall / a.wall:.2f}  (goal <= 0.65)   c/a' = {c.wall / a_binned.wall:.2f}")
    if b is not None and b_tuned is not None:
        print(f"c/b = {c.wall / b.wall:.2f}  (goal <= 0.40)   c/b' = {c.wall / b_tuned.wall:.2f}")
    print(f"best MAE c vs a: {100 * (c.best_mae / a.best_mae - 1):+.2f}%  (goal within 2%)")


if __name__ == "__main__":
    main()
