"""An HPO job on a real MLflow tracking server: its trials become child runs of its run
(pruned ones killed) that MLflow's own UI lists, and ``trainctl studies open`` shows its
study in optuna-dashboard."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow.entities import Run
from playwright.async_api import async_playwright, expect

from actors.mlflow_writer import PARENT_TAG
from domain.jobs import ExperimentStatus
from tests.mlflow_server import MlflowServer
from tests.network import free_port
from tests.serve_app.conftest import TEN_WEEKS, Deployed
from tests.serve_app.test_console import CHROMIUM, SCREENSHOTS
from tests.serve_app.test_mlflow_mirror import mirrored_run, tracking


@pytest.fixture(autouse=True)
def _tracking_server_up(mlflow_server: MlflowServer) -> None:
    """These tests read the tracking server directly: it has started (it starts in the
    background with the session)."""
    mlflow_server.wait_ready()


async def test_hpo_trials_become_child_runs_pruned_ones_killed(deployed: Deployed) -> None:
    name = "mirrored-hpo"
    space = {"learning_rate": {"type": "loguniform", "low": 1e-5, "high": 0.3}}
    job_id = await deployed.submit(
        {
            "enable_hpo": True,
            "n_trials": 12,
            "hyperparameters": space | {"n_estimators": 150},
            "early_stopping_rounds": 0,
            **TEN_WEEKS,
        },
        model_name=name,
    )
    job = await deployed.wait_finished(job_id, timeout=180)
    assert job["status"] == "completed", job
    assert job["metrics"]["trials_pruned"] >= 1

    run = await mirrored_run(deployed, name, job_id)
    client = tracking(deployed)
    experiment_id = run.info.experiment_id
    children = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{run.info.run_id}'")
    experiments = await deployed.experiments.of_job(job_id)
    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {e.name for e in experiments if e.model_id != job["model_id"]}
    trials = [e for e in experiments if e.name.startswith("trial ")]
    assert len(trials) == 12
    for trial in trials:
        child = by_name[trial.name]
        assert child.data.tags["service.status"] == trial.status.value
        assert child.data.params["learning_rate"] == str(trial.params["learning_rate"])
        assert client.get_metric_history(child.info.run_id, "validation_l1")
    pruned = [by_name[e.name] for e in trials if e.status is ExperimentStatus.PRUNED]
    assert len(pruned) == job["metrics"]["trials_pruned"]
    assert {c.info.status for c in pruned} == {"KILLED"}
    completed = [by_name[e.name] for e in trials if e.status is ExperimentStatus.COMPLETED]
    assert {c.info.status for c in completed} == {"FINISHED"}
    assert run.data.metrics["best_value"] == pytest.approx(job["metrics"]["best_value"])

    await see_in_mlflow_ui(deployed, run, sorted(by_name))

    # The same study opens in optuna-dashboard.
    port = free_port()
    trainctl = Path(sys.executable).parent / "trainctl"
    command = [trainctl, "studies", "open", job_id, "--data-dir", deployed.data_dir]
    dashboard = await asyncio.create_subprocess_exec(*map(str, command), "--port", str(port))
    try:
        studies = await answer(f"http://127.0.0.1:{port}/api/studies")
        assert [s["study_name"] for s in studies["study_summaries"]] == [job_id]
        [summary] = studies["study_summaries"]
        study = await answer(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}")
        assert len(study["trials"]) == 12
    finally:
        dashboard.terminate()
        await asyncio.wait_for(dashboard.wait(), 20)


async def see_in_mlflow_ui(deployed: Deployed, run: Run, children: list[str]) -> None:
    """MLflow's own UI lists the job's run and its trials (saved as ``mlflow-hpo-job.png``
    with ``CONSOLE_SCREENSHOT_DIR`` set, as the console's screenshots are)."""
    uri = deployed.config.orchestrator.mlflow.tracking_uri
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(f"{uri}/#/experiments/{run.info.experiment_id}/runs")
            name = str(run.info.run_name)
            parent = page.get_by_role("gridcell").filter(has=page.get_by_role("link", name=name))
            await parent.wait_for(timeout=30_000)
            assistant = page.get_by_role("button", name="Close", exact=True)
            if await assistant.count():  # MLflow's assistant panel, open on a first visit
                await assistant.first.click()
            await parent.get_by_role("button").first.click()  # expand the child runs
            for child in children:
                await expect(page.get_by_role("link", name=child, exact=True)).to_be_visible()
            if SCREENSHOTS:
                await page.screenshot(path=Path(SCREENSHOTS) / "mlflow-hpo-job.png")
        finally:
            await browser.close()


async def answer(url: str) -> Any:
    """The JSON a server starting up answers at ``url``."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            try:
                response = await client.get(url)
                if response.status_code == 200:
                    return response.json()
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} did not answer"
            await asyncio.sleep(0.3)
