"""The experiments API on the deployed service, over jobs and HPO trials, on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain.comparison import verdict
from tests.serve_app.conftest import TEN_WEEKS, Deployed

API = "/ai/training/experiments"


async def completed_jobs(deployed: Deployed, model_name: str, rates: list[float]) -> list[str]:
    job_ids = [
        await deployed.submit(
            {
                "hyperparameters": {
                    "learning_rate": rate,
                    "n_estimators": 60,
                    "objective": "regression",
                }
            },
            model_name=model_name,
        )
        for rate in rates
    ]
    for job_id in job_ids:
        assert (await deployed.wait_finished(job_id))["status"] == "completed"
    return job_ids


async def experiments_of(deployed: Deployed, **query: Any) -> list[dict[str, Any]]:
    response = await deployed.http.get(API, params=query)
    assert response.status_code == 200, response.text
    experiments: list[dict[str, Any]] = response.json()["experiments"]
    return experiments


@pytest.mark.both_databases  # filters and orders by a metric in SQL
async def test_search_show_series_and_compare_job_experiments(deployed: Deployed) -> None:
    name = f"exp-{uuid.uuid4().hex[:8]}"
    job_ids = await completed_jobs(deployed, name, [0.3, 0.03, 0.1])

    ascending = await experiments_of(deployed, model_name=name, order_by="metric.mae", order="asc")
    assert [e["job_id"] for e in ascending] != []
    maes = [e["metrics"]["mae"] for e in ascending]
    assert maes == sorted(maes)
    assert len(maes) == 3
    descending = await experiments_of(deployed, model_name=name, order_by="metric.mae")
    assert [e["experiment_id"] for e in descending] == [
        e["experiment_id"] for e in reversed(ascending)
    ]
    assert await experiments_of(deployed, model_name=name, tenant_id="nobody") == []
    assert len(await experiments_of(deployed, job_id=job_ids[0])) == 1
    assert len(await experiments_of(deployed, model_name=name, status="completed")) == 3
    assert (
        await experiments_of(deployed, model_name=name, created_after="2999-01-01T00:00:00Z") == []
    )

    best = ascending[0]
    detail = (await deployed.http.get(f"{API}/{best['experiment_id']}")).json()
    job = await deployed.job(detail["job_id"])
    assert detail["params"]["learning_rate"] == job["config"]["hyperparameters"]["learning_rate"]
    assert detail["params"]["num_leaves"] == 31
    assert detail["metrics"]["mae"] == job["metrics"]["mae"]
    assert detail["model_id"] == job["model_id"]
    assert detail["job"]["status"] == "completed"
    assert detail["job"]["feature_set"] == "forecast_basic"

    series = await deployed.http.get(
        f"{API}/{best['experiment_id']}/metrics",
        params={"name": "validation_l1", "min_step": 2, "max_step": 5},
    )
    points = series.json()["points"]
    assert [(p["name"], p["step"]) for p in points] == [("validation_l1", s) for s in range(2, 6)]

    ids = [e["experiment_id"] for e in ascending]
    comparison = (await deployed.http.post(f"{API}/compare", json={"experiment_ids": ids})).json()
    params = {p["name"]: p for p in comparison["params"]}
    assert params["learning_rate"]["differs"] is True
    assert params["num_leaves"]["differs"] is False
    assert sorted(params["learning_rate"]["values"].values()) == [0.03, 0.1, 0.3]
    metrics = {m["name"]: m for m in comparison["metrics"]}
    assert metrics["mae"]["best"] == [ids[0]]
    assert metrics["r2"]["goal"] == "max"
    curve = comparison["curve"]
    assert curve["metric"] == "validation_l1"
    assert curve["steps"][:3] == [1, 2, 3]
    assert all(len(values) == len(curve["steps"]) for values in curve["values"].values())


async def test_compare_hpo_trials(deployed: Deployed) -> None:
    job_id = await deployed.submit(
        {
            "enable_hpo": True,
            "n_trials": 3,
            **TEN_WEEKS,
            "pruning": False,
            "hyperparameters": {
                "num_leaves": {"type": "int", "low": 8, "high": 64},
                "n_estimators": 60,
            },
        },
        model_name=f"hpo-{uuid.uuid4().hex[:8]}",
    )
    assert (await deployed.wait_finished(job_id))["status"] == "completed"
    trials = [
        e
        for e in await experiments_of(
            deployed, job_id=job_id, order_by="metric.best_validation_l1", order="asc"
        )
        if e["name"].startswith("trial ")
    ]
    assert len(trials) == 3
    ids = [t["experiment_id"] for t in trials]
    comparison = (await deployed.http.post(f"{API}/compare", json={"experiment_ids": ids})).json()
    [leaves] = [p for p in comparison["params"] if p["name"] == "num_leaves"]
    assert set(leaves["values"]) == set(ids)
    [best] = [m for m in comparison["metrics"] if m["name"] == "best_validation_l1"]
    assert best["best"] == [ids[0]]
    assert len(comparison["curve"]["values"]) == 3
    assert comparison["windows"]["baseline"] == ids[0]

    # Against the default trial (the search's first), as the search judged its best.
    [default] = [t["experiment_id"] for t in trials if t["name"] == "trial 0"]
    others = [i for i in ids if i != default]
    body = {"experiment_ids": [default, *others]}
    windows = (await deployed.http.post(f"{API}/compare", json=body)).json()["windows"]
    assert windows["metric"] == "window_mae"
    assert windows["baseline"] == default
    assert [row["experiment_id"] for row in windows["rows"]] == others
    errors = {i: await window_errors(deployed, i) for i in [default, *others]}
    assert all(len(e) == 4 for e in errors.values()), errors
    for row in windows["rows"]:
        judged = verdict(errors[row["experiment_id"]], errors[default])
        assert judged is not None
        assert (row["gain"], row["margin"], row["won"]) == pytest.approx(
            (judged.gain, judged.margin, judged.won)
        )
    won = [row for row in windows["rows"] if row["won"]]
    winner = max(won, key=lambda row: row["gain"])["experiment_id"] if won else default
    assert windows["winner"] == winner


async def window_errors(deployed: Deployed, experiment_id: str) -> list[float]:
    response = await deployed.http.get(
        f"{API}/{experiment_id}/metrics", params={"name": "window_mae"}
    )
    points = response.json()["points"]
    assert [p["step"] for p in points] == list(range(1, len(points) + 1))
    return [p["value"] for p in points]


async def test_bad_requests_are_refused(deployed: Deployed) -> None:
    assert (await deployed.http.get(f"{API}/no-such-experiment")).status_code == 404
    assert (await deployed.http.get(f"{API}/no-such-experiment/metrics")).status_code == 404
    for params in (
        {"order_by": "metric."},
        {"order_by": "name; DROP TABLE ai_experiments"},
        {"order": "sideways"},
        {"status": "finished"},
        {"page_size": 0},
        {"created_after": "yesterday"},
        {"created_after": "0001-01-01T00:00:00+05:00"},  # before year 1 in UTC
        {"created_before": "9999-12-31T23:59:59-05:00"},  # after 9999
    ):
        response = await deployed.http.get(API, params=params)
        assert response.status_code == 422, params
        assert response.json()["detail"][0]["loc"][0] == "query", response.text
    some = (await experiments_of(deployed, page_size=1))[0]  # earlier tests left experiments
    steps = await deployed.http.get(
        f"{API}/{some['experiment_id']}/metrics", params={"min_step": 5, "max_step": 2}
    )
    assert steps.status_code == 422
    for body in (
        {"experiment_ids": [some["experiment_id"]]},
        {"experiment_ids": [f"e{i}" for i in range(21)]},
        {"experiment_ids": [some["experiment_id"], some["experiment_id"]]},
        {"experiment_ids": [some["experiment_id"], "x"], "colour": "red"},
    ):
        response = await deployed.http.post(f"{API}/compare", json=body)
        assert response.status_code == 422, body
    unknown = await deployed.http.post(
        f"{API}/compare", json={"experiment_ids": [some["experiment_id"], "missing-one"]}
    )
    assert unknown.status_code == 404
    assert "missing-one" in unknown.json()["detail"]
