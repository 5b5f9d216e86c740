"""HPO jobs over HTTP: trials as Ray tasks, recorded, pruned, cancelled and resumed."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import ray
from optuna.trial import TrialState

from domain.jobs import ExperimentStatus
from pipeline.models.artifacts import METADATA_FILE
from pipeline.search.hpo import journal_storage
from pipeline.search.members import NUMBER
from pipeline.store.feature_store import FeatureStore
from tests import ray_state
from tests.ray_state import idle_cpus, task_names
from tests.serve_app.conftest import TEN_WEEKS, Deployed

SMALL_SPACE = {
    "learning_rate": {"type": "loguniform", "low": 0.05, "high": 0.3},
    "num_leaves": {"type": "int", "low": 8, "high": 64},
}


def hpo(**config: Any) -> dict[str, Any]:
    """A search on ten weeks of data: what it does, not its data, is under test."""
    return {"enable_hpo": True, **TEN_WEEKS, **config}


def study_of(deployed: Deployed, job_id: str) -> optuna.Study:
    storage = journal_storage(deployed.data_dir / "studies" / f"{job_id}.journal")
    return optuna.load_study(study_name=job_id, storage=storage)


async def test_search_records_every_trial_and_registers_the_best(deployed: Deployed) -> None:
    job_id = await deployed.submit(
        hpo(
            n_trials=6,
            pruning=False,
            hyperparameters=SMALL_SPACE | {"max_depth": 6, "n_estimators": 100},
        )
    )
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job
    metrics = job["metrics"]
    assert (metrics["trials_completed"], metrics["trials_pruned"], metrics["trials_failed"]) == (
        6,
        0,
        0,
    )

    experiments = await deployed.experiments.of_job(job_id)
    trials = {e.name: e for e in experiments if e.name.startswith("trial ")}
    assert set(trials) == {f"trial {n}" for n in range(6)}
    assert all(e.status is ExperimentStatus.COMPLETED for e in trials.values())
    trial_values = set()
    for experiment in trials.values():
        assert set(experiment.params) == {"learning_rate", "num_leaves"}
        curve = await deployed.experiments.metric_history(experiment.experiment_id, "validation_l1")
        assert len(curve) >= 10
        assert [p.step for p in curve] == list(range(1, len(curve) + 1))
        history = deployed.experiments.metric_history
        [best] = await history(experiment.experiment_id, "best_validation_l1")
        trial_values.add(best.value)
    [search] = [e for e in experiments if e.name == "search"]
    best_so_far = await deployed.experiments.metric_history(search.experiment_id, "best_value")
    assert len(best_so_far) == 6
    # Each point is the best of the trials finished when trial ``step`` finished; trials
    # run two at a time and may finish out of order, so the points need not fall by step.
    values = [p.value for p in best_so_far]
    assert min(values) == metrics["best_value"]
    assert set(values) <= trial_values

    study = study_of(deployed, job_id)
    assert study.best_value == metrics["best_value"]
    assert study.best_params == metrics["best_params"]
    model = await deployed.registry.get(job["model_id"])
    for name, value in study.best_params.items():
        assert model.params[name] == value
    assert model.params["max_depth"] == 6
    assert model.params["num_iterations"] == study.best_trial.user_attrs["best_iteration"]
    metadata = json.loads((Path(model.artifact_uri) / METADATA_FILE).read_text())
    assert metadata["search"]["best_trial"] == study.best_trial.user_attrs[NUMBER]
    assert metadata["search"]["n_trials"] == 6
    assert metadata["search"]["study_name"] == job_id
    logs = (await deployed.http.get(f"/ai/training/jobs/{job_id}/logs?tail=1000")).json()["logs"]
    assert (
        sum(
            line["message"].startswith("trial ") for line in logs if line["stage"] == "orchestrator"
        )
        == 6
    )
    tasks = await asyncio.to_thread(ray_state.tasks, ("name", "=", f"trial:{job_id}:0"))
    assert tasks
    spans = sorted(
        (t.datetime_start, t.datetime_complete)
        for t in study.trials
        if t.datetime_start is not None and t.datetime_complete is not None
    )
    assert len(spans) == 6
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), (
        "no two trials ran at once"
    )


async def test_pruning_stops_trials_in_a_bad_region(deployed: Deployed) -> None:
    space = {"learning_rate": {"type": "loguniform", "low": 1e-5, "high": 0.3}}
    job_id = await deployed.submit(
        hpo(n_trials=12, hyperparameters=space | {"n_estimators": 150}, early_stopping_rounds=0)
    )
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job
    assert job["metrics"]["trials_pruned"] >= 1
    assert job["metrics"]["trials_completed"] + job["metrics"]["trials_pruned"] == 12
    pruned = [
        e for e in await deployed.experiments.of_job(job_id) if e.status is ExperimentStatus.PRUNED
    ]
    assert len(pruned) == job["metrics"]["trials_pruned"]
    curve = await deployed.experiments.metric_history(pruned[0].experiment_id, "validation_l1")
    assert curve
    assert all(point.step % 15 == 0 for point in curve)  # reported every 150 // 10 rounds
    study = study_of(deployed, job_id)
    assert len(study.get_trials(states=(TrialState.PRUNED,))) == len(pruned)


SLOW_TRIALS = {
    "n_estimators": 3000,
    "learning_rate": {"type": "float", "low": 0.001, "high": 0.002},
}


async def test_cancelling_a_search_stops_its_trials(deployed: Deployed) -> None:
    job_id = await deployed.submit(
        hpo(n_trials=50, pruning=False, early_stopping_rounds=0, hyperparameters=SLOW_TRIALS)
    )
    await deployed.wait_until(job_id, lambda j: j["stage"] == "preprocess")
    await asyncio.sleep(1.0)
    response = await deployed.http.delete(f"/ai/training/jobs/{job_id}")
    assert response.json()["status"] == "cancelled"
    # Every trial's CPU comes back: a trial stops at its next cancel check, or its worker is
    # killed after the grace period. (Ray's task states can keep a killed trial RUNNING for
    # good: its owner, the search's coordinator, may end before it reports the death.)
    deadline = time.monotonic() + 30
    while (cpus := idle_cpus())[0] < cpus[1]:
        assert time.monotonic() < deadline, f"{cpus} CPUs idle 30 s after the cancel"
        await asyncio.sleep(0.2)
    trials = await task_names(lambda name: name.startswith(f"trial:{job_id}:"), 1)
    assert 0 < len(trials) < 50
    job = await deployed.job(job_id)
    assert job["status"] == "cancelled"
    assert job["model_id"] is None


@pytest.mark.slow
@pytest.mark.both_databases
async def test_a_killed_orchestrator_resumes_the_study(deployed: Deployed) -> None:
    space = {"learning_rate": {"type": "float", "low": 0.05, "high": 0.2}}
    job_id = await deployed.submit(
        hpo(
            n_trials=10,
            pruning=False,
            early_stopping_rounds=0,
            hyperparameters=space | {"n_estimators": 600},
        )
    )
    await deployed.wait_until(
        job_id, lambda j: (j["metrics"] or {}).get("trials_completed", 0) >= 2, timeout=120
    )
    ray.kill(deployed.running.orchestrator, no_restart=False)
    job = await deployed.wait_finished(job_id, timeout=180)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2

    study = study_of(deployed, job_id)
    assert len(study.trials) == 10, "finished trials are not run again"
    assert all(t.state is TrialState.COMPLETE for t in study.trials)
    experiments = await deployed.experiments.of_job(job_id)
    names = [e.name for e in experiments if e.name.startswith("trial ")]
    assert sorted(names) == sorted(f"trial {t.user_attrs[NUMBER]}" for t in study.trials)
    assert job["metrics"]["trials_completed"] == 10


@pytest.fixture(scope="module")
async def centred(service: Deployed) -> str:
    """The demo load less its mean: a target with negative values, which LightGBM's
    count objectives (poisson, gamma) refuse when a trial fits, as no check before it can
    know (the values are in the data, not the request)."""
    data = FeatureStore(service.config.pipeline.features_root).load("forecast_basic").data
    data = data.assign(load_kw=data["load_kw"] - data["load_kw"].mean())
    response = await service.http.put(
        "/ai/training/feature-sets/centred",
        params={"timestamp_column": "timestamp", "target_column": "load_kw"},
        content=data.to_csv(index=False).encode(),
    )
    assert response.status_code == 200, response.text
    return "centred"


async def test_failed_trials_are_recorded_and_the_search_goes_on(
    deployed: Deployed, centred: str
) -> None:
    objective = {"type": "categorical", "choices": ["regression", "poisson"]}
    job_id = await deployed.submit(
        hpo(
            feature_set=centred,
            n_trials=10,
            pruning=False,
            hyperparameters={"objective": objective, "n_estimators": 60},
        )
    )
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job
    assert job["metrics"]["trials_failed"] >= 1
    assert job["metrics"]["trials_completed"] >= 1
    assert job["metrics"]["best_params"] == {"objective": "regression"}
    failed = [
        e
        for e in await deployed.experiments.of_job(job_id)
        if e.status is ExperimentStatus.FAILED and e.name.startswith("trial ")
    ]
    assert len(failed) == job["metrics"]["trials_failed"]
    logs = (await deployed.http.get(f"/ai/training/jobs/{job_id}/logs?tail=1000")).json()["logs"]
    assert any("failed" in line["message"] and "negative" in line["message"] for line in logs)


async def test_a_search_whose_every_trial_fails_fails_the_job(
    deployed: Deployed, centred: str
) -> None:
    objective = {"type": "categorical", "choices": ["poisson", "gamma"]}
    job_id = await deployed.submit(
        hpo(
            feature_set=centred,
            n_trials=3,
            hyperparameters={"objective": objective, "n_estimators": 60},
        )
    )
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "failed"
    assert "every trial failed" in job["error_message"]
    assert job["model_id"] is None
