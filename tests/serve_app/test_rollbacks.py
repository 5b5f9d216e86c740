"""Automatic rollback on the deployed service: while a policy's rollback rule watches a
promotion, the previous champion forecasts the new one's scored forecasts row for row;
a champion whose live MAE is worse than its predecessor's on the same rows is rolled
back through the rollback path (with its evidence, once), a better one is not. The rule
itself is tested on fixed scores in tests/domain/test_rollbacks.py, its rows on both
databases in tests/db."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from serve_app.cli import app
from tests.serve_app.conftest import QUICK, Deployed, job_body
from tests.serve_app.test_batch_forecasts import finished, upload
from tests.serve_app.test_forecasting import meters
from tests.serve_app.test_promotions_api import logged

HORIZON = 24
DAY = pd.Timedelta(days=1)
POLICIES = "/ai/training/retrain-policies"
#: A model that is all but the training mean: one round at a tiny learning rate.
FLAT = {"hyperparameters": {"n_estimators": 1, "learning_rate": 0.01}, "quantiles": []}
#: Never fires: the policy is here for its rollback rule.
NO_RETRAIN = {"new_rows": 10**9}


def one_meter(days: int) -> pd.DataFrame:
    """``days`` of a meter (its final week, whose load ``meters`` doubles, left out)."""
    frame = meters(count=1, days=days + 7)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return until(frame, days - 1)


def until(frame: pd.DataFrame, day: int) -> pd.DataFrame:
    """The rows up to the end of day ``day`` (0: the first)."""
    last = frame["timestamp"].min() + (day + 1) * DAY
    rows: pd.DataFrame = frame[frame["timestamp"] < last]
    return rows


async def trained(deployed: Deployed, name: str, model_name: str, config: dict[str, Any]) -> str:
    body = {"feature_set": name, "horizon": HORIZON, "promote_champion": True, **config}
    job = await deployed.wait_finished(
        await deployed.submit(body, model_name=model_name), timeout=180
    )
    assert job["status"] == "completed", job
    model_id: str = job["model_id"]
    return model_id


async def champion(deployed: Deployed, model_name: str) -> str:
    found = await deployed.http.get(f"/ai/models/tenant-a/{model_name}@champion")
    model_id: str = found.json()["model_id"]
    return model_id


async def watch(deployed: Deployed, name: str, model_name: str, rule: dict[str, Any]) -> None:
    body = {
        "job": job_body({"feature_set": name, "horizon": HORIZON}, model_name=model_name),
        "rules": NO_RETRAIN,
        "rollback": rule,
    }
    created = await deployed.http.post(POLICIES, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["rollback"] == rule


async def serve_days(
    deployed: Deployed, name: str, model_id: str, full: pd.DataFrame, first: int, days: int
) -> list[int]:
    """Day by day: append the day's actuals (a new version), score what they bring, let
    the policies act, then forecast the next day with ``model_id``; the forecasts scored
    after each day (with one more day of actuals at the end for the last forecast)."""
    scored = []
    for day in range(first, first + days + 1):
        await upload(deployed, name, until(full, day))
        scored.append(await deployed.running.orchestrator.monitor.remote())
        await deployed.running.orchestrator.check_policies.remote()
        if day == first + days:
            break
        started = await deployed.http.post(
            f"/ai/models/{model_id}/forecasts", json={"feature_set": name, "horizon": HORIZON}
        )
        assert started.status_code == 201, started.text
        done = await finished(deployed, started.json()["forecast_id"])
        assert done["forecast"]["status"] == "completed", done
    return scored


async def predicted_mae(
    deployed: Deployed, model_id: str, full: pd.DataFrame, origin: pd.Timestamp
) -> float:
    """``model_id``'s MAE over the day from ``origin`` asked by a predict request."""
    window = full[
        (full["timestamp"] >= origin - 8 * DAY) & (full["timestamp"] < origin + DAY)
    ].copy()
    actual = window.loc[window["timestamp"] >= origin, "load_kw"].to_numpy()
    window["timestamp"] = window["timestamp"].map(pd.Timestamp.isoformat)
    window["load_kw"] = window["load_kw"].astype(object)
    window.loc[window["timestamp"] >= origin.isoformat(), "load_kw"] = None
    response = await deployed.http.post(
        f"/ai/models/{model_id}/predict", json={"rows": window.to_dict("records")}
    )
    assert response.status_code == 200, response.text
    forecast = [p for p in response.json()["predictions"] if p["actual"] is None]
    predicted = [p["predicted"] for p in forecast]
    assert len(predicted) == len(actual) == HORIZON
    return float(abs(pd.Series(predicted) - actual).mean())


async def test_a_champion_worse_live_than_its_predecessor_is_rolled_back(
    deployed: Deployed,
) -> None:
    full = one_meter(40)
    name = f"rbmeter{uuid.uuid4().hex[:6]}"
    model_name = f"rb_{name}"
    await upload(deployed, name, until(full, 24))
    good = await trained(deployed, name, model_name, QUICK)
    # A week the meter was stuck at its mean: the flat model wins the comparison on it
    # (the good one forecasts a daily shape that is not there) and is promoted.
    stuck = until(full, 31).copy()
    week = stuck["timestamp"] >= stuck["timestamp"].min() + 25 * DAY
    stuck.loc[week, "load_kw"] = until(full, 24)["load_kw"].mean()
    await upload(deployed, name, stuck)
    flat = await trained(deployed, name, model_name, FLAT)
    assert await champion(deployed, model_name) == flat
    base = f"/ai/models/tenant-a/{model_name}"
    [promoted, _] = (await deployed.http.get(f"{base}/promotions")).json()["promotions"]
    assert (promoted["decision"], promoted["champion_id"]) == ("promoted", good)

    rule = {"after_forecasts": 4, "metric": "mae", "margin": 0.0, "min_confidence": 0.9}
    await watch(deployed, name, model_name, rule)
    # The corrected readings arrive, then a day at a time; the flat model serves.
    scored = await serve_days(deployed, name, flat, full, first=31, days=4)
    assert scored == [0, 1, 1, 1, 1]

    page = (await deployed.http.get(f"/ai/models/{flat}/monitoring")).json()
    assert page["total"] == 4
    for evaluation in page["evaluations"]:
        shadow = evaluation["shadow"]
        assert (shadow["model_id"], shadow["rows"]) == (good, HORIZON)
        assert shadow["promotion_id"] == promoted["promotion_id"]
        mae = shadow["metrics"]["mae"]
        assert mae["model"] == pytest.approx(evaluation["metrics"]["mae"])  # the same rows
        assert mae["previous"] < mae["model"]
        [day] = shadow["days"]
        assert day["day"] == evaluation["origin"][:10]
    # The previous champion's shadow is its forecast from the same origin: as a predict
    # request with the history up to it and the day's target left out forecasts it.
    latest = page["evaluations"][0]
    origin = pd.Timestamp(latest["origin"])
    assert latest["shadow"]["metrics"]["mae"]["previous"] == pytest.approx(
        await predicted_mae(deployed, good, full, origin)
    )
    assert await champion(deployed, model_name) == good  # rolled back on the fourth

    promotions = (await deployed.http.get(f"{base}/promotions")).json()["promotions"]
    rolled = promotions[0]
    assert (rolled["decision"], rolled["challenger_id"], rolled["champion_id"]) == (
        "rolled_back",
        flat,
        good,
    )
    assert rolled["reason"].startswith("rolled back automatically: live MAE")
    assert "over 4 UTC day(s)" in rolled["reason"]
    live = rolled["evidence"]["live"]
    assert live["paired_test"]["confidence"] == pytest.approx(15 / 16)  # 4 days, all worse
    assert live["model_score"] > live["previous_score"]
    assert len(live["days"]) == len(live["forecasts"]) == 4
    assert rolled["evidence"]["undoes"] == promoted["promotion_id"]
    lines = await logged(deployed, promoted["job_id"], "rollback")
    assert any(f"rolled back from {flat} to {good}" in line for line in lines), lines

    # Once: nothing is watched after a rollback, so nothing more happens.
    await deployed.running.orchestrator.check_policies.remote()
    after = (await deployed.http.get(f"{base}/promotions")).json()
    assert after["total"] == len(promotions)
    assert await champion(deployed, model_name) == good


async def test_a_champion_better_live_than_its_predecessor_stays(deployed: Deployed) -> None:
    full = one_meter(36)
    name = f"rbkeep{uuid.uuid4().hex[:6]}"
    model_name = f"rb_{name}"
    await upload(deployed, name, until(full, 24))
    weak = await trained(deployed, name, model_name, FLAT)
    await upload(deployed, name, until(full, 31))
    good = await trained(deployed, name, model_name, QUICK)
    assert await champion(deployed, model_name) == good  # promoted over the flat one

    # No confidence asked for: the scores alone would roll it back if it were worse.
    rule = {"after_forecasts": 1, "metric": "mae", "margin": 0.0, "min_confidence": 0.0}
    await watch(deployed, name, model_name, rule)
    assert await serve_days(deployed, name, good, full, first=31, days=2) == [0, 1, 1]
    assert await champion(deployed, model_name) == good
    promotions = (await deployed.http.get(f"/ai/models/tenant-a/{model_name}/promotions")).json()
    assert [p["decision"] for p in promotions["promotions"]] == ["promoted", "promoted"]
    page = (await deployed.http.get(f"/ai/models/{good}/monitoring")).json()
    assert {e["shadow"]["model_id"] for e in page["evaluations"]} == {weak}
    pairs = [e["shadow"]["metrics"]["mae"] for e in page["evaluations"]]
    assert len(pairs) == 2
    assert all(pair["previous"] > pair["model"] for pair in pairs)


async def test_trainctl_sets_shows_and_turns_off_the_rollback_rule(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINING_API_URL", deployed.running.api_url)
    monkeypatch.setenv("TRAINING_API_KEY", deployed.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()
    model_name = f"rb_cli{uuid.uuid4().hex[:6]}"
    created = cli.invoke(
        app,
        [
            "policies", "create", "--tenant", "tenant-a", "--model-name", model_name,
            "--new-rows", "1000", "--rollback-after", "5", "--rollback-confidence", "0.8",
        ],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    [policy] = [
        p
        for p in (await deployed.http.get(POLICIES)).json()["policies"]
        if p["model_name"] == model_name
    ]
    assert policy["rollback"] == {
        "after_forecasts": 5,
        "metric": "mae",
        "margin": 0.0,
        "min_confidence": 0.8,
    }
    listed = cli.invoke(app, ["policies", "list", "--tenant", "tenant-a"])
    assert "rollback after 5" in listed.output
    url = f"{POLICIES}/{policy['policy_id']}"
    off = cli.invoke(app, ["policies", "update", policy["policy_id"], "--no-rollback"])
    assert off.exit_code == 0, off.output
    assert (await deployed.http.get(url)).json()["rollback"] is None
    bad = cli.invoke(app, ["policies", "update", policy["policy_id"]])
    assert bad.exit_code == 2
    on = await deployed.http.patch(url, json={"rollback": {"after_forecasts": 3}})
    assert on.status_code == 200, on.text
    assert on.json()["rollback"]["after_forecasts"] == 3
    refused = await deployed.http.patch(url, json={"rollback": {"after_forecasts": 101}})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "rollback", "after_forecasts"]
    assert (await deployed.http.delete(url)).status_code == 204
