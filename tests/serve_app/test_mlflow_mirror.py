"""The MLflow mirror on a real tracking server: jobs as runs, models as versions loadable by
MLflow, aliases followed, outages and restarts survived, nothing written twice (an HPO
job's trials: ``test_mlflow_hpo``)."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import ray
from mlflow import MlflowClient
from mlflow.entities import Run
from ray.exceptions import ActorUnavailableError, RayActorError

from actors.mlflow_writer import COMPLETE_TAG, JOB_TAG, MODEL_TAG, PARENT_TAG, PROMOTION_TAG
from actors.settings import NAMESPACE
from pipeline.models.artifacts import MODEL_FILE, series_directory
from tests.mlflow_load import pyfunc_predict
from tests.mlflow_server import MlflowServer
from tests.pipeline.forecasting.test_predict import as_json_rows
from tests.pipeline.training.test_per_series import meters
from tests.serve_app.conftest import SLOW, TEN_WEEKS, Deployed
from tests.serve_app.test_per_series import upload

TENANT = "tenant-a"


@pytest.fixture(autouse=True)
def _tracking_server_up(mlflow_server: MlflowServer) -> None:
    """These tests read the tracking server directly: it has started (it starts in the
    background with the session)."""
    mlflow_server.wait_ready()


def tracking(deployed: Deployed) -> MlflowClient:
    uri = deployed.config.orchestrator.mlflow.tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def names(deployed: Deployed, model_name: str) -> tuple[str, str]:
    """The MLflow experiment and registered model of a tenant's model."""
    prefix = deployed.config.orchestrator.mlflow.experiment_prefix
    return f"{prefix}{TENANT}/{model_name}", f"{prefix}{TENANT}.{model_name}"


def mirror(deployed: Deployed) -> Any:
    return ray.get_actor(deployed.running.mirror_name, namespace=NAMESPACE)


async def once_back(call: Callable[[], Any]) -> Any:
    """``call()``'s result, retried while its actor restarts."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await call()
        except (ActorUnavailableError, RayActorError, ValueError):
            assert time.monotonic() < deadline, "the actor did not come back"
            await asyncio.sleep(0.5)


async def catch_up(deployed: Deployed) -> int:
    """One pass of the mirror now; the backlog left."""
    backlog: int = await once_back(lambda: mirror(deployed).catch_up.remote())
    return backlog


def runs_of_job(client: MlflowClient, experiment: str, job_id: str) -> list[Run]:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return list(client.search_runs([found.experiment_id], f"tags.`{JOB_TAG}` = '{job_id}'"))


async def mirrored_run(deployed: Deployed, model_name: str, job_id: str, timeout=90) -> Run:
    """The job's run once the mirror has written it whole."""
    client = tracking(deployed)
    experiment, _ = names(deployed, model_name)
    deadline = time.monotonic() + timeout
    while True:
        await catch_up(deployed)
        runs = runs_of_job(client, experiment, job_id)
        if runs and runs[0].data.tags.get(COMPLETE_TAG) == "true":
            assert len(runs) == 1, runs
            return runs[0]
        assert time.monotonic() < deadline, f"job {job_id} was not mirrored"
        await asyncio.sleep(0.5)


async def mirrored_aliases(deployed: Deployed, model_name: str, expected: dict[str, str]) -> None:
    """Wait until the registered model's MLflow aliases map to these versions."""
    _, registered = names(deployed, model_name)
    deadline = time.monotonic() + 60
    while True:
        await catch_up(deployed)
        aliases = dict(tracking(deployed).get_registered_model(registered).aliases)
        if aliases == expected:
            return
        assert time.monotonic() < deadline, aliases
        await asyncio.sleep(0.5)


async def mirrored_tags(deployed: Deployed, model_name: str, version: str) -> dict[str, str]:
    """A version's tags once its promotion decision is among them."""
    _, registered = names(deployed, model_name)
    deadline = time.monotonic() + 60
    while True:
        await catch_up(deployed)
        tags = dict(tracking(deployed).get_model_version(registered, version).tags)
        if f"{PROMOTION_TAG}.decision" in tags:
            return tags
        assert time.monotonic() < deadline, tags
        await asyncio.sleep(0.5)


def mlflow_versions(deployed: Deployed, model_name: str, model_id: str) -> list[str]:
    """The MLflow versions mirrored from one registered model (one, once mirrored)."""
    _, registered = names(deployed, model_name)
    return [
        str(v.version)
        for v in tracking(deployed).search_model_versions(f"name='{registered}'")
        if v.tags.get(MODEL_TAG) == model_id
    ]


async def mirrored_version(deployed: Deployed, model_name: str, model_id: str) -> str:
    deadline = time.monotonic() + 60
    while not (versions := mlflow_versions(deployed, model_name, model_id)):
        assert time.monotonic() < deadline, f"model {model_id} was not mirrored"
        await catch_up(deployed)
        await asyncio.sleep(0.5)
    assert len(versions) == 1, versions
    return versions[0]


async def test_a_job_becomes_a_run_and_its_model_a_loadable_version(deployed: Deployed) -> None:
    name = "mirrored-plain"
    job_id = await deployed.submit({"promote_champion": True}, model_name=name)
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job

    run = await mirrored_run(deployed, name, job["job_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert (tags["service.tenant_id"], tags["service.feature_set"]) == (TENANT, "forecast_basic")
    assert tags[MODEL_TAG] == job["model_id"]
    params = run.data.params
    assert (params["learning_rate"], params["num_iterations"]) == ("0.2", "30")
    assert params["config.target_variable"] == "load_kw"
    assert params["config.hyperparameters.n_estimators"] == "30"
    for metric in ("mae", "rmse", "mape"):
        assert run.data.metrics[metric] == pytest.approx(job["metrics"][metric])
    client = tracking(deployed)
    curve = client.get_metric_history(run.info.run_id, "validation_l1")
    assert [p.step for p in sorted(curve, key=lambda p: p.step)] == list(range(1, len(curve) + 1))
    assert len(curve) >= 10
    experiment, registered = names(deployed, name)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    experiment_id = found.experiment_id
    assert not client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{run.info.run_id}'")

    await mirrored_aliases(deployed, name, {"champion": "1"})
    version = await mirrored_version(deployed, name, job["model_id"])
    assert version == "1"
    files = {a.path for a in client.list_artifacts(run.info.run_id, "model/artifacts/service")}
    service_files = {"model.txt", "metadata.json", "preprocessing.joblib"}
    assert {f"model/artifacts/service/{f}" for f in service_files} <= files
    assert client.get_registered_model(registered).aliases == {"champion": "1"}


async def test_after_a_per_series_model_the_next_model_and_alias_reach_mlflow(
    deployed: Deployed,
) -> None:
    """A per-series model is mirrored (its series' boosters in subdirectories), and the
    models and aliases after it are too; each MLflow model, loaded in a process of its
    own, forecasts what the service's predict endpoint does."""
    feature_set = await upload(deployed)
    per_series, plain = f"ps-{uuid.uuid4().hex[:6]}", f"after-ps-{uuid.uuid4().hex[:6]}"
    jobs = []
    for name, fields in ((per_series, {"per_series": True}), (plain, {})):
        config = {"feature_set": feature_set, "promote_champion": True, **fields}
        job = await deployed.wait_finished(await deployed.submit(config, model_name=name), 180)
        assert job["status"] == "completed", job
        jobs.append(job)

    rows = meters().groupby("meter").tail(24 * 10).reset_index(drop=True)
    rows.loc[rows.groupby("meter").cumcount(ascending=False) < 6, "load_kw"] = np.nan
    for name, job in reversed(list(zip((per_series, plain), jobs, strict=True))):
        version = await mirrored_version(deployed, name, job["model_id"])
        await mirrored_aliases(deployed, name, {"champion": version})
        _, registered = names(deployed, name)
        await same_forecasts(deployed, f"models:/{registered}@champion", job["model_id"], rows)
    files = {
        a.path
        for run in [await mirrored_run(deployed, per_series, jobs[0]["job_id"])]
        for a in tracking(deployed).list_artifacts(
            run.info.run_id, f"model/artifacts/service/{series_directory(2)}"
        )
    }
    assert f"model/artifacts/service/{series_directory(2)}/{MODEL_FILE}" in files


async def test_a_model_that_fails_to_mirror_holds_back_no_other(deployed: Deployed) -> None:
    """A model whose mirroring fails while MLflow answers (its files are gone) is tried
    again later; the models and aliases after it are mirrored meanwhile."""
    broken, after = f"broken-{uuid.uuid4().hex[:6]}", f"after-broken-{uuid.uuid4().hex[:6]}"
    promoted = {"promote_champion": True, **TEN_WEEKS}
    first = await deployed.wait_finished(await deployed.submit(promoted, model_name=broken))
    model = await deployed.registry.get(first["model_id"])
    shutil.rmtree(model.artifact_uri)
    second = await deployed.wait_finished(await deployed.submit(promoted, model_name=after))

    version = await mirrored_version(deployed, after, second["model_id"])
    await mirrored_aliases(deployed, after, {"champion": version})
    assert mlflow_versions(deployed, broken, first["model_id"]) == []
    text = (await deployed.http.get("/metrics")).text
    # At least the broken model waits for a retry (the session's service is shared: an
    # item of another test may be waiting too; one run of make test saw 2).
    failing = re.search(r"^training_mlflow_mirror_failing (\S+)$", text, re.MULTILINE)
    assert failing is not None, text
    assert float(failing.group(1)) >= 1, text
    assert "training_mlflow_mirror_up 1.0" in text


async def same_forecasts(
    deployed: Deployed, model_uri: str, model_id: str, rows: pd.DataFrame
) -> None:
    response = await deployed.http.post(
        f"/ai/models/{model_id}/predict", json={"rows": as_json_rows(rows)}
    )
    assert response.status_code == 200, response.text
    served = pd.DataFrame(response.json()["predictions"])
    uri = str(deployed.config.orchestrator.mlflow.tracking_uri)
    with tempfile.TemporaryDirectory() as work:
        loaded, code = await asyncio.to_thread(pyfunc_predict, model_uri, rows, Path(work), uri)
    assert "code" in code.parts, code  # the model's own copy of the service's code
    assert len(loaded) == len(served) > 0
    np.testing.assert_allclose(loaded["predicted"], served["predicted"], rtol=1e-9)
    if "series" in served and served["series"].notna().any():
        assert loaded["series"].tolist() == served["series"].tolist()


async def test_aliases_follow_moves_and_deletes(deployed: Deployed) -> None:
    name = "mirrored-aliases"
    promoted = {"promote_champion": True}
    first = await deployed.wait_finished(await deployed.submit(promoted, model_name=name))
    second = await deployed.wait_finished(await deployed.submit(promoted, model_name=name))
    versions = {job["model_id"]: job["model_id"].rsplit(":", 1)[1] for job in (first, second)}
    aliases = f"/ai/models/{TENANT}/{name}/aliases"
    champion = (await deployed.http.get(f"/ai/models/{TENANT}/{name}@champion")).json()
    other = next(m for m in versions if m != champion["model_id"])
    moved = await deployed.http.put(f"{aliases}/staging", json={"version": versions[other]})
    assert moved.status_code == 200, moved.text

    same = await mirrored_version(deployed, name, champion["model_id"])
    moved_to = await mirrored_version(deployed, name, other)
    await mirrored_aliases(deployed, name, {"champion": same, "staging": moved_to})
    back = versions[champion["model_id"]]
    assert (
        await deployed.http.put(f"{aliases}/staging", json={"version": back})
    ).status_code == 200
    await mirrored_aliases(deployed, name, {"champion": same, "staging": same})
    assert (await deployed.http.delete(f"{aliases}/staging")).status_code == 204
    await mirrored_aliases(deployed, name, {"champion": same})

    # Each decision is tagged on the version it was about, with its evidence.
    first_tags = await mirrored_tags(deployed, name, same)
    assert first_tags[f"{PROMOTION_TAG}.decision"] == "promoted"
    assert first_tags[f"{PROMOTION_TAG}.reason"] == "no champion"
    kept = await mirrored_tags(deployed, name, moved_to)
    assert kept[f"{PROMOTION_TAG}.decision"] == "kept"  # the same model again: no better
    assert kept[f"{PROMOTION_TAG}.champion"] == champion["model_id"]
    assert kept[f"{PROMOTION_TAG}.metric"] == "mae"
    assert float(kept[f"{PROMOTION_TAG}.challenger_score"]) == pytest.approx(
        second["metrics"]["mae"]
    )
    assert float(kept[f"{PROMOTION_TAG}.champion_score"]) > 0
    assert kept[f"{PROMOTION_TAG}.window_start"] < kept[f"{PROMOTION_TAG}.window_end"]


@pytest.mark.slow
@pytest.mark.both_databases
async def test_a_job_finishes_while_mlflow_is_down_and_is_mirrored_once_after_restarts(
    deployed: Deployed, mlflow_server: MlflowServer
) -> None:
    name = "mirrored-outage"
    await asyncio.to_thread(mlflow_server.stop)
    try:
        job_id = await deployed.submit(
            SLOW | {"hyperparameters": {"n_estimators": 300}}, model_name=name
        )
        job = await deployed.wait_finished(job_id)
        assert job["status"] == "completed", job
        assert await catch_up(deployed) >= 1
        text = (await deployed.http.get("/metrics")).text
        assert "training_mlflow_mirror_up 0.0" in text
        backlog = next(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("training_mlflow_mirror_backlog ")
        )
        assert backlog >= 1

        # The service restarts in between: the orchestrator and its mirror are killed and
        # come back; what waits is still in the database.
        ray.kill(mirror(deployed), no_restart=False)
        ray.kill(deployed.running.orchestrator, no_restart=False)
        await once_back(deployed.running.orchestrator.ready.remote)
        assert await catch_up(deployed) >= 1
    finally:
        await asyncio.to_thread(mlflow_server.start)

    run = await mirrored_run(deployed, name, job_id)
    assert run.data.params["config.early_stopping_rounds"] == "0"
    model_id = job["model_id"]
    await mirrored_version(deployed, name, model_id)
    for _ in range(2):  # further passes write nothing again
        await catch_up(deployed)
    experiment, _ = names(deployed, name)
    assert len(runs_of_job(tracking(deployed), experiment, job_id)) == 1
    assert len(mlflow_versions(deployed, name, model_id)) == 1
    text = (await deployed.http.get("/metrics")).text
    assert "training_mlflow_mirror_up 1.0" in text
