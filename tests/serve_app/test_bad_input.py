"""Bad input gets a clear 4xx that names the field, and writes no row."""

from __future__ import annotations

from typing import Any

import pytest

from tests.serve_app.conftest import Deployed, count_jobs, job_body


def _with(config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return job_body(config, **fields)


def _without(field: str) -> dict[str, Any]:
    body = job_body()
    del body[field]
    return body


BAD_BODIES = [
    pytest.param(_with(model_type="regression"), ["body", "model_type"], id="unknown-model-type"),
    pytest.param(_with(priority="asap"), ["body", "priority"], id="unknown-priority"),
    pytest.param(
        _with({"start_date": "2025-01-02T00:00:00Z", "end_date": "2025-01-01T00:00:00Z"}),
        ["body", "config"],
        id="end-before-start",
    ),
    pytest.param(
        _with({"validation_split": 0.5, "test_split": 0.4}), ["body", "config"], id="splits-too-big"
    ),
    pytest.param(
        _with({"start_date": "2999-01-01T00:00:00Z"}),
        ["body", "config", "start_date"],
        id="window-after-the-data",
    ),
    pytest.param(
        _with({"end_date": "1990-01-01T00:00:00Z"}),
        ["body", "config", "end_date"],
        id="window-before-the-data",
    ),
    pytest.param(_with({"horizon": 0}), ["body", "config", "horizon"], id="horizon-zero"),
    pytest.param(
        _with({"time_budget_s": 0}), ["body", "config", "time_budget_s"], id="budget-zero"
    ),
    pytest.param(
        _with({"per_series": True, "time_budget_s": 60}),
        ["body", "config", "time_budget_s"],
        id="budget-per-series",
    ),
    pytest.param(
        _with({"enable_hpo": True, "time_budget_s": 60}),
        ["body", "config", "time_budget_s"],
        id="budget-hpo",
    ),
    pytest.param(
        _with({"feature_set": "no_such_set"}), ["body", "config", "feature_set"], id="unknown-set"
    ),
    pytest.param(
        _with({"target_variable": "price"}),
        ["body", "config", "target_variable"],
        id="unknown-target",
    ),
    pytest.param(
        _with({"hyperparameters": {"num_leavez": 8}}),
        ["body", "config", "hyperparameters"],
        id="unknown-hyperparameter",
    ),
    pytest.param(
        _with({"hyperparameters": {"num_leaves": -5}}),
        ["body", "config", "hyperparameters"],
        id="hyperparameter-out-of-range",
    ),
    pytest.param(
        _with({"hyperparameters": {"objective": "bogus"}}),
        ["body", "config", "hyperparameters"],
        id="unknown-objective",
    ),
    pytest.param(
        _with(
            {
                "enable_hpo": True,
                "hyperparameters": {"subsample": {"type": "float", "low": 0.5, "high": 2.0}},
            }
        ),
        ["body", "config", "hyperparameters"],
        id="search-range-out-of-range",
    ),
    pytest.param(_with({"n_workers": 64}), ["body", "config", "n_workers"], id="too-many-workers"),
    pytest.param(
        _with({"distributed": {"workers": 64}}),
        ["body", "config", "distributed", "workers"],
        id="distributed-workers-beyond-the-cluster",
    ),
    pytest.param(
        _with({"distributed": {"workers": 0}}),
        ["body", "config", "distributed", "workers"],
        id="distributed-workers-zero",
    ),
    pytest.param(
        _with({"distributed": {"workers": 2, "gpus": 1}}),
        ["body", "config", "distributed", "gpus"],
        id="distributed-unknown-field",
    ),
    pytest.param(
        _with(
            {
                "enable_hpo": True,
                "hyperparameters": {"num_leaves": {"type": "int", "low": 9, "high": 3}},
            }
        ),
        ["body", "config", "hyperparameters", "num_leaves"],
        id="spec-low-above-high",
    ),
    pytest.param(
        _with(
            {
                "enable_hpo": True,
                "hyperparameters": {"objective": {"type": "categorical", "choices": []}},
            }
        ),
        ["body", "config", "hyperparameters", "objective"],
        id="spec-no-choices",
    ),
    pytest.param(
        _with(
            {
                "enable_hpo": True,
                "hyperparameters": {"learning_rate": {"type": "loguniform", "low": 0, "high": 1}},
            }
        ),
        ["body", "config", "hyperparameters", "learning_rate"],
        id="spec-loguniform-zero",
    ),
    pytest.param(
        _with(
            {
                "enable_hpo": True,
                "hyperparameters": {"leaves": {"type": "int", "low": 2, "high": 9}},
            }
        ),
        ["body", "config", "hyperparameters"],
        id="spec-unknown-name",
    ),
    pytest.param(
        _with({"hyperparameters": {"num_leaves": {"type": "int", "low": 2, "high": 9}}}),
        ["body", "config"],
        id="spec-without-hpo",
    ),
    pytest.param(
        _with({"enable_hpo": True, "n_trials": 0}), ["body", "config", "n_trials"], id="no-trials"
    ),
    pytest.param(
        _with({"start_date": "yesterday"}), ["body", "config", "start_date"], id="bad-date"
    ),
    pytest.param(_with({"surprise": 1}), ["body", "config", "surprise"], id="unknown-config-field"),
    pytest.param(_with(tenant_id="../etc"), ["body", "tenant_id"], id="bad-tenant"),
    pytest.param(
        _with({"holidays": "XX"}), ["body", "config", "holidays"], id="unknown-holiday-country"
    ),
    pytest.param(
        _with({"holidays": "AU-ZZ"}),
        ["body", "config", "holidays"],
        id="unknown-holiday-subdivision",
    ),
    pytest.param(
        _with({"quantiles": [0.0, 0.5, 1.0]}), ["body", "config", "quantiles"], id="quantile-0-1"
    ),
    pytest.param(
        _with({"quantiles": [0.9, 0.1]}), ["body", "config", "quantiles"], id="quantiles-unsorted"
    ),
    pytest.param(
        _with({"quantiles": [0.1, 0.1]}), ["body", "config", "quantiles"], id="quantiles-repeated"
    ),
    pytest.param(
        _with({"backtest": {"windows": 0}}),
        ["body", "config", "backtest", "windows"],
        id="backtest-no-window",
    ),
    pytest.param(
        _with({"backtest": {"windows": 100, "step": 240}}),
        ["body", "config", "backtest"],
        id="backtest-past-the-data",
    ),
    pytest.param(
        _with({"backtest": {"windows": 3}, "start_date": "2025-12-20T00:00:00Z"}),
        ["body", "config", "backtest"],
        id="backtest-past-the-date-range",
    ),
    pytest.param(
        _with({"horizon": 336, "end_date": "2024-01-21T00:00:00Z"}),  # the set's first days
        ["body", "config", "horizon"],
        id="horizon-past-the-date-range",
    ),
    pytest.param(_without("model_name"), ["body", "model_name"], id="missing-model-name"),
    pytest.param(
        _with({"promote_champion": True, "promotion": {"margin": 0.6}}),
        ["body", "config", "promotion", "margin"],
        id="promotion-margin-above-half",
    ),
    pytest.param(
        _with({"promote_champion": True, "promotion": {"metric": "rmse"}}),
        ["body", "config", "promotion", "metric"],
        id="promotion-unknown-metric",
    ),
    pytest.param(
        _with({"promote_champion": True, "promotion": {"min_confidence": 1.5}}),
        ["body", "config", "promotion", "min_confidence"],
        id="promotion-confidence-above-one",
    ),
    pytest.param(
        _with({"promotion": {"metric": "mae"}}), ["body", "config"], id="promotion-unasked"
    ),
    pytest.param(
        _with({"promote_champion": True, "promotion": {"metric": "wql"}, "quantiles": []}),
        ["body", "config"],
        id="promotion-wql-without-quantiles",
    ),
]


@pytest.mark.parametrize(("body", "loc"), BAD_BODIES)
async def test_bad_job_is_422_naming_the_field_and_stores_nothing(
    deployed: Deployed, body: dict[str, Any], loc: list[str]
) -> None:
    before = await count_jobs(deployed.store)
    response = await deployed.http.post("/ai/training/jobs/start", json=body)
    assert response.status_code == 422, response.text
    details = response.json()["detail"]
    assert any(d["loc"][: len(loc)] == loc for d in details), details
    assert all(d["msg"] for d in details)
    assert await count_jobs(deployed.store) == before


async def test_malformed_json_is_422(deployed: Deployed) -> None:
    before = await count_jobs(deployed.store)
    response = await deployed.http.post(
        "/ai/training/jobs/start",
        content=b'{"tenant_id": "t", ',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"
    assert await count_jobs(deployed.store) == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=101", "page_size"),
        ("page=0", "page"),
        ("status=exploded", "status"),
        ("model_type=regression", "model_type"),
    ],
)
async def test_bad_list_query_is_422(deployed: Deployed, query: str, field: str) -> None:
    response = await deployed.http.get(f"/ai/training/jobs?{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]


@pytest.mark.parametrize("listing", ["/ai/models/forecasts", "/ai/models/detections"])
async def test_an_id_filter_the_database_cannot_hold_is_422(
    deployed: Deployed, listing: str
) -> None:
    response = await deployed.http.get(listing, params={"model_id": "a\x00b"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "model_id"]


async def test_a_rollback_reason_the_database_cannot_hold_is_422(deployed: Deployed) -> None:
    response = await deployed.http.post(
        "/ai/models/tenant-a/load_forecast/rollback", json={"reason": "oops\x00"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "reason"]


@pytest.mark.parametrize("field", ["min_step", "max_step"])
async def test_a_step_the_database_cannot_hold_is_422(deployed: Deployed, field: str) -> None:
    """Steps are 32-bit integers: PostgreSQL had refused a larger one with a 500."""
    path = "/ai/training/experiments/00000000-0000-0000-0000-000000000000/metrics"
    response = await deployed.http.get(path, params={field: 2**31})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", field]
    assert (await deployed.http.get(path, params={field: 2**31 - 1})).status_code == 404


@pytest.mark.parametrize("tail", [0, 1001])
async def test_log_tail_out_of_range_is_422(deployed: Deployed, tail: int) -> None:
    job_id = await deployed.submit()
    response = await deployed.http.get(f"/ai/training/jobs/{job_id}/logs?tail={tail}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "tail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ai/training/jobs/{id}"),
        ("DELETE", "/ai/training/jobs/{id}"),
        ("POST", "/ai/training/jobs/{id}/retry"),
        ("GET", "/ai/training/jobs/{id}/logs"),
    ],
)
async def test_unknown_job_is_404(deployed: Deployed, method: str, path: str) -> None:
    before = await count_jobs(deployed.store)
    missing = "00000000-0000-0000-0000-000000000000"
    response = await deployed.http.request(method, path.format(id=missing))
    assert response.status_code == 404
    assert missing in response.json()["detail"]
    assert await count_jobs(deployed.store) == before


@pytest.mark.both_databases
async def test_list_filters_and_paginates(deployed: Deployed) -> None:
    ids = [await deployed.submit(tenant_id="tenant-list", model_name=f"m{i % 2}") for i in range(3)]
    await deployed.idle()
    page = (await deployed.http.get("/ai/training/jobs?tenant_id=tenant-list&page_size=2")).json()
    assert page["total"] == 3
    assert page["page_size"] == 2
    assert [j["job_id"] for j in page["jobs"]] == ids[::-1][:2]
    second = (
        await deployed.http.get("/ai/training/jobs?tenant_id=tenant-list&page=2&page_size=2")
    ).json()
    assert [j["job_id"] for j in second["jobs"]] == ids[:1]
    m0 = (await deployed.http.get("/ai/training/jobs?tenant_id=tenant-list&model_name=m0")).json()
    assert m0["total"] == 2
    done = (
        await deployed.http.get(
            "/ai/training/jobs?tenant_id=tenant-list&status=completed&model_type=forecast"
        )
    ).json()
    assert done["total"] == 3
    none = (await deployed.http.get("/ai/training/jobs?tenant_id=tenant-list&status=failed")).json()
    assert none == {"jobs": [], "total": 0, "page": 1, "page_size": 20}


async def test_health_and_docs(deployed: Deployed) -> None:
    assert (await deployed.http.get("/healthz")).json() == {"status": "ok"}
    assert (await deployed.http.get("/docs")).status_code == 200
    spec = (await deployed.http.get("/openapi.json")).json()
    assert "/ai/training/jobs/start" in spec["paths"]


@pytest.mark.parametrize("tenant", ["forecasts", "detections"])
async def test_a_tenant_named_like_a_listing_resolves_its_aliases(
    deployed: Deployed, tenant: str
) -> None:
    """``/ai/models/forecasts/m@champion`` is tenant ``forecasts``'s alias: no such model
    here (404), where it had been read as a forecast id (422)."""
    response = await deployed.http.get(f"/ai/models/{tenant}/load@champion")
    assert response.status_code == 404, response.text
    assert "champion" in response.json()["detail"]
