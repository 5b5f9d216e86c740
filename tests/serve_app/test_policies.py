"""Retrain policies on the deployed service: a champion whose served forecasts drift is
retrained by its policy, warm from its hyperparameters, on the newest rows, and the rule
and its evidence are kept with the job; the limits hold further retrains back; bad
policies get 422, a second one for the model 409, other tenants 404."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from db.models import RetrainTrigger
from serve_app.cli import app
from tests.serve_app.conftest import QUICK, Deployed, job_body
from tests.serve_app.test_batch_forecasts import finished, upload
from tests.serve_app.test_forecasting import meters

HORIZON = 12
URL = "/ai/training/retrain-policies"


async def test_a_drifting_champion_is_retrained_by_its_policy(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = meters(days=36)
    full["timestamp"] = pd.to_datetime(full["timestamp"], utc=True)
    cut = full["timestamp"].max() - pd.Timedelta(days=1)
    history = full[full["timestamp"] <= cut]
    name = f"polmeters{uuid.uuid4().hex[:6]}"
    model_name = f"pol_{name}"
    await upload(deployed, name, history)
    config = {**QUICK, "feature_set": name, "horizon": HORIZON, "promote_champion": True}
    job = await deployed.wait_finished(
        await deployed.submit(config, model_name=model_name), timeout=180
    )
    assert job["status"] == "completed", job
    champion = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()

    body = {
        "job": job_body(config, model_name=model_name),
        "rules": {"drift_evaluations": 1},
        "cooldown": "PT1H",
    }
    created = await deployed.http.post(URL, json=body)
    assert created.status_code == 201, created.text
    policy = created.json()
    assert (policy["model_name"], policy["rules"]["drift_evaluations"]) == (model_name, 1)
    assert (await deployed.http.post(URL, json=body)).status_code == 409
    assert await checked(deployed) == []  # nothing scored: nothing drifted

    started = await deployed.http.post(
        f"/ai/models/{job['model_id']}/forecasts", json={"feature_set": name, "horizon": HORIZON}
    )
    assert (await finished(deployed, started.json()["forecast_id"]))["forecast"]["status"] == (
        "completed"
    )
    shifted = full.copy()
    last_day = shifted["timestamp"] > cut
    shifted.loc[last_day, "load_kw"] *= 1.5  # a level shift the day after the forecast
    await upload(deployed, name, shifted)
    assert await deployed.running.orchestrator.monitor.remote() == 1
    status = (await deployed.http.get(f"/ai/models/{job['model_id']}/monitoring")).json()
    assert status["status"]["status"] == "drifted", status["status"]

    [retrain_id] = await checked(deployed)
    retrain = await deployed.job(retrain_id)
    assert retrain["model_name"] == model_name
    assert retrain["config"]["promote_champion"] is True
    assert retrain["config"]["end_date"] is None
    assert retrain["config"]["enable_hpo"] is False
    for name_, value in retrain["config"]["hyperparameters"].items():
        assert champion["params"][name_] == value
    assert retrain["config"]["hyperparameters"]  # warm: the champion's, not the defaults

    triggers = (await deployed.http.get(f"{URL}/{policy['policy_id']}/triggers")).json()
    [trigger] = triggers["triggers"]
    assert (trigger["job_id"], trigger["rule"]) == (retrain_id, "drift")
    assert trigger["evidence"]["champion"] == job["model_id"]
    assert trigger["evidence"]["warm_start_from"] == job["model_id"]
    logs = (await deployed.http.get(f"/ai/training/jobs/{retrain_id}/logs")).json()
    assert any("retrain policy" in line["message"] for line in logs["logs"])

    # An orchestrator that died between the submit and the trigger's record: the next
    # check asks for the same retrain, gets the same job back, and records its trigger.
    async with deployed.store.database.transaction() as session:
        await session.execute(delete(RetrainTrigger).where(RetrainTrigger.job_id == retrain_id))
    assert await checked(deployed) == [retrain_id]
    again = (await deployed.http.get(f"{URL}/{policy['policy_id']}/triggers")).json()
    assert [t["job_id"] for t in again["triggers"]] == [retrain_id]

    assert await checked(deployed) == []  # its retrain is queued or running
    done = await deployed.wait_finished(retrain_id, timeout=180)
    assert done["status"] == "completed", done
    assert await checked(deployed) == []  # within the cooldown

    # New data is counted from what the last retrain saw, not from the champion's data
    # alone: a retrain the champion beat is not tried again on the same rows.
    moved = {"job": job_body(config, model_name="elsewhere")}
    refused = await deployed.http.patch(f"{URL}/{policy['policy_id']}", json=moved)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "job"]
    on_rows = {"rules": {"new_rows": 24}, "cooldown": "PT0S"}
    assert (await deployed.http.patch(f"{URL}/{policy['policy_id']}", json=on_rows)).is_success
    assert await checked(deployed) == []
    later = meters(days=37)
    later["timestamp"] = pd.to_datetime(later["timestamp"], utc=True)
    await upload(deployed, name, later)  # one more day of four meters: 96 rows
    [on_data] = await checked(deployed)
    assert (await deployed.wait_finished(on_data, timeout=180))["status"] == "completed"
    fired = (await deployed.http.get(f"{URL}/{policy['policy_id']}/triggers")).json()["triggers"]
    assert (fired[0]["rule"], fired[0]["evidence"]["new_rows"]) == ("new_data", 96)
    assert fired[0]["evidence"]["data_rows"] == len(later)

    monkeypatch.setenv("TRAINING_API_URL", deployed.running.api_url)
    monkeypatch.setenv("TRAINING_API_KEY", deployed.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()
    listed = cli.invoke(app, ["policies", "list", "--tenant", "tenant-a"])
    assert policy["policy_id"] in listed.output
    assert "new_rows=24" in listed.output
    shown = cli.invoke(app, ["policies", "triggers", policy["policy_id"]])
    assert retrain_id in shown.output
    assert "new_data" in shown.output
    watched = cli.invoke(app, ["models", "monitoring", job["model_id"]])
    assert watched.exit_code == 0, watched.output
    assert "drifted: live MAE" in watched.output

    paused = await deployed.http.patch(
        f"{URL}/{policy['policy_id']}", json={"enabled": False, "cooldown": "PT0S"}
    )
    assert paused.status_code == 200, paused.text
    assert (paused.json()["enabled"], paused.json()["cooldown_seconds"]) == (False, 0)
    other = deployed.client_for(await deployed.key("tenant-b"))
    async with other:
        assert (await other.get(f"{URL}/{policy['policy_id']}")).status_code == 404
        assert (await other.get(URL)).json()["policies"] == []
    assert (await deployed.http.delete(f"{URL}/{policy['policy_id']}")).status_code == 204
    assert (await deployed.http.get(f"{URL}/{policy['policy_id']}")).status_code == 404


async def test_a_bad_policy_is_refused_with_the_field_at_fault(deployed: Deployed) -> None:
    job = job_body({**QUICK, "feature_set": "forecast_basic"}, model_name="policy_bad")
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"job": job, "rules": {}}, ["body", "rules"]),
        ({"job": job, "rules": {"cron": "every night"}}, ["body", "rules", "cron"]),
        ({"job": job, "rules": {"new_rows": 0}}, ["body", "rules", "new_rows"]),
        ({"job": job, "rules": {"new_rows": 5}, "cooldown": "-PT1H"}, ["body", "cooldown"]),
        (
            {"job": job, "rules": {"new_rows": 5}, "rollback": {"after_forecasts": 0}},
            ["body", "rollback", "after_forecasts"],
        ),
        (
            {"job": job, "rules": {"new_rows": 5}, "rollback": {"metric": "rmse"}},
            ["body", "rollback", "metric"],
        ),
        (
            {"job": job, "rules": {"new_rows": 5}, "rollback": {"min_confidence": 1.5}},
            ["body", "rollback", "min_confidence"],
        ),
        (
            {"job": job, "rules": {"new_rows": 5}, "rollback": {"margin": -0.1}},
            ["body", "rollback", "margin"],
        ),
        # WQL needs quantiles, which the job (QUICK) has none of.
        ({"job": job, "rules": {"new_rows": 5}, "rollback": {"metric": "wql"}}, ["body"]),
    ]
    for body, loc in cases:
        response = await deployed.http.post(URL, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][: len(loc)] == loc, response.json()
    unknown_set = {**job, "config": {**job["config"], "feature_set": "no_such_set"}}
    refused = await deployed.http.post(URL, json={"job": unknown_set, "rules": {"new_rows": 5}})
    assert refused.status_code == 422, refused.text
    kept = (await deployed.http.get(URL)).json()["policies"]
    assert all(p["model_name"] != "policy_bad" for p in kept)  # a refused one left no row

    # An edit is held to the same rules, against what the policy has.
    created = await deployed.http.post(URL, json={"job": job, "rules": {"new_rows": 5}})
    assert created.status_code == 201, created.text
    url = f"{URL}/{created.json()['policy_id']}"
    edits: list[tuple[dict[str, Any], list[str]]] = [
        ({"cooldown": "-PT1H"}, ["body", "cooldown"]),
        ({"window": "-P30D"}, ["body", "window"]),
        ({"window": "PT0S"}, ["body", "window"]),
        ({"rollback": {"metric": "wql"}}, ["body", "rollback", "metric"]),
    ]
    for body, loc in edits:
        response = await deployed.http.patch(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"][: len(loc)] == loc, response.json()
    unchanged = (await deployed.http.get(url)).json()
    assert (unchanged["cooldown_seconds"], unchanged["window_seconds"]) == (86_400, None)
    assert unchanged["rollback"] is None
    assert (await deployed.http.delete(url)).status_code == 204


async def checked(deployed: Deployed) -> list[str]:
    started: list[str] = await deployed.running.orchestrator.check_policies.remote()
    return started
