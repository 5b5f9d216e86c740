"""The model registry and predictions on the deployed service, on both databases."""

from __future__ import annotations

import io
import json
import math
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ray import serve

from pipeline.features.build import build_features
from pipeline.forecasting.predict import history_needed
from pipeline.models.artifacts import PREDICTIONS_FILE, ModelArtifact, load_artifact
from pipeline.storage import Location
from pipeline.store.feature_store import FeatureStore
from serve_app.deployment import APP_NAME
from tests.serve_app.conftest import Deployed
from tests.serve_app.test_feature_sets_api import two_meters_csv
from tests.serve_app.test_forecasting import P10_P90

#: Clearly worse than the defaults: a handful of shallow, slow-learning trees.
WEAK = {"hyperparameters": {"n_estimators": 5, "learning_rate": 0.01}}


async def completed(deployed: Deployed, name: str, config: dict[str, Any]) -> dict[str, Any]:
    job_id = await deployed.submit(config, model_name=name)
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job
    return job


def request_rows(
    deployed: Deployed, artifact: ModelArtifact, extra: int, feature_set: str = "forecast_basic"
) -> list[dict[str, Any]]:
    """The feature set's last rows: the history the lags need plus ``extra`` to predict."""
    need = history_needed(artifact.feature_spec)
    data = FeatureStore(deployed.config.pipeline.features_root).load(feature_set).data
    tail = data.drop(columns=["is_anomaly"], errors="ignore").tail(need + extra)
    tail = tail.assign(timestamp=tail["timestamp"].map(pd.Timestamp.isoformat))
    return [{str(k): v for k, v in row.items()} for row in tail.to_dict(orient="records")]


async def completed_anomaly(deployed: Deployed) -> dict[str, Any]:
    job_id = await deployed.submit(
        {"feature_set": "anomaly_basic"}, model_type="anomaly", model_name="anomaly_detector"
    )
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job
    return job


async def test_registry_lists_shows_and_promotes_the_champion(deployed: Deployed) -> None:
    name = f"reg-{uuid.uuid4().hex[:8]}"
    good = await completed(deployed, name, {"promote_champion": True})
    weak = await completed(deployed, name, {**WEAK, "promote_champion": True})
    assert weak["metrics"]["mae"] > good["metrics"]["mae"]

    listed = (await deployed.http.get("/ai/models", params={"model_name": name})).json()
    assert listed["total"] == 2
    assert [m["model_id"] for m in listed["models"]] == [weak["model_id"], good["model_id"]]
    shown = (await deployed.http.get(f"/ai/models/{good['model_id']}")).json()
    assert shown["job_id"] == good["job_id"]
    assert shown["metrics"]["mae"] == good["metrics"]["mae"]
    assert "lag_24" in shown["features"]
    assert shown["aliases"] == ["champion"]
    assert shown["artifact_uri"].startswith(str(deployed.data_dir / "artifacts"))

    champion = await deployed.http.get(f"/ai/models/tenant-a/{name}@champion")
    assert champion.json()["model_id"] == good["model_id"]
    logs = (await deployed.http.get(f"/ai/training/jobs/{weak['job_id']}/logs")).json()["logs"]
    assert any("does not beat" in line["message"] for line in logs)

    weak_version = weak["model_id"].rsplit(":", 1)[1]
    aliases = f"/ai/models/tenant-a/{name}/aliases"
    moved = await deployed.http.put(f"{aliases}/staging", json={"version": weak_version})
    assert moved.status_code == 200
    assert moved.json()["aliases"] == ["staging"]
    staging = await deployed.http.get(f"/ai/models/tenant-a/{name}@staging")
    assert staging.json()["model_id"] == weak["model_id"]
    assert (await deployed.http.delete(f"{aliases}/staging")).status_code == 204
    assert (await deployed.http.get(f"/ai/models/tenant-a/{name}@staging")).status_code == 404
    assert (await deployed.http.delete(f"{aliases}/staging")).status_code == 404

    missing = await deployed.http.put(f"{aliases}/staging", json={"version": "19990101.000000"})
    assert missing.status_code == 404
    for bad in ({"version": "latest"}, {}, {"version": weak_version, "force": True}):
        assert (await deployed.http.put(f"{aliases}/staging", json=bad)).status_code == 422
    assert (
        await deployed.http.put(f"{aliases}/Bad Alias", json={"version": weak_version})
    ).status_code == 422
    assert (await deployed.http.get("/ai/models/tenant-a:nothing:1")).status_code == 404
    assert (
        await deployed.http.get("/ai/models", params={"model_type": "regression"})
    ).status_code == 422


async def test_predictions_equal_the_artifact_and_reuse_the_loaded_model(
    deployed: Deployed,
) -> None:
    name = f"pred-{uuid.uuid4().hex[:8]}"
    job = await completed(deployed, name, {"promote_champion": True})
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()
    artifact = load_artifact(Location(model["artifact_uri"]))
    rows = request_rows(deployed, artifact, extra=24)
    for row in rows[-6:]:
        row["load_kw"] = None

    response = await deployed.http.post(
        f"/ai/models/{job['model_id']}/predict", json={"rows": rows}
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"][-24:]
    assert all(p["actual"] is None for p in predictions[-6:])

    # The same rows through the training feature code and the artifact, without the API.
    frame = FeatureStore(deployed.config.pipeline.features_root).load("forecast_basic")
    matrix = build_features(frame, artifact.feature_spec, columns=artifact.metadata["features"])
    direct = pd.Series(
        artifact.predict(matrix.features[artifact.metadata["features"]].to_numpy()),
        index=matrix.timestamps,
    )
    served = pd.Series(
        [p["predicted"] for p in predictions],
        index=pd.to_datetime([p["timestamp"] for p in predictions], utc=True),
    )
    np.testing.assert_allclose(served.to_numpy(), direct.loc[served.index].to_numpy())

    server = serve.get_deployment_handle("ModelServer", app_name=APP_NAME)
    before = await server.cache_info.remote()
    again = await deployed.http.post(
        f"/ai/models/tenant-a/{name}@champion/predict", json={"rows": rows}
    )
    assert again.json()["predictions"][-24:] == predictions
    after = await server.cache_info.remote()
    assert after["hits"] == before["hits"] + 1
    assert after["misses"] == before["misses"], "the second call must not reload the artifact"


async def test_bad_rows_and_ids_are_refused(deployed: Deployed) -> None:
    listed = (await deployed.http.get("/ai/models", params={"page_size": 1})).json()
    [model] = listed["models"]
    url = f"/ai/models/{model['model_id']}/predict"
    artifact = load_artifact(Location(model["artifact_uri"]))
    rows = request_rows(deployed, artifact, extra=2)

    short = await deployed.http.post(url, json={"rows": rows[-7 * 24 :]})
    assert short.status_code == 422
    assert "missing history" in short.json()["detail"][0]["msg"]
    no_column = await deployed.http.post(
        url, json={"rows": [{k: v for k, v in r.items() if k != "temperature_c"} for r in rows]}
    )
    assert no_column.status_code == 422
    assert "missing columns" in no_column.json()["detail"][0]["msg"]
    holed = [dict(r) for r in rows]
    holed[3]["temperature_c"] = math.nan
    nan = await deployed.http.post(
        url, content=json.dumps({"rows": holed}), headers={"content-type": "application/json"}
    )
    assert nan.status_code == 200, nan.text  # a missing covariate, as training takes it
    infinite = [dict(r) for r in rows]
    infinite[5]["temperature_c"] = math.inf
    refused = await deployed.http.post(
        url, content=json.dumps({"rows": infinite}), headers={"content-type": "application/json"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"] == ["body", "rows", 5, "temperature_c"]
    huge = [dict(r) for r in rows]
    huge[-30]["load_kw"] = 1e200  # finite, but its rolling windows' squares overflow
    overflowed = await deployed.http.post(url, json={"rows": huge})
    assert overflowed.status_code == 422, overflowed.text
    assert "values too large" in overflowed.json()["detail"][0]["msg"]
    assert (await deployed.http.post(url, json={"rows": []})).status_code == 422
    missing = await deployed.http.post("/ai/models/tenant-a:none:1/predict", json={"rows": rows})
    assert missing.status_code == 404


async def test_anomaly_model_predictions_flag_and_score(deployed: Deployed) -> None:
    job = await completed_anomaly(deployed)
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()
    artifact = load_artifact(Location(model["artifact_uri"]))
    rows = request_rows(deployed, artifact, extra=48, feature_set="anomaly_basic")
    response = await deployed.http.post(
        f"/ai/models/{job['model_id']}/predict", json={"rows": rows, "explain": True}
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"][-48:]
    # An anomaly model explains its expected value, from which the residual is scored.
    for p in predictions:
        contributions = p["explanation"]["contributions"]
        total = p["explanation"]["expected_value"] + sum(contributions.values())
        assert total == pytest.approx(p["predicted"], rel=1e-9)
    evaluated = pd.read_parquet(Path(model["artifact_uri"]) / PREDICTIONS_FILE)
    flagged = evaluated.set_index(evaluated["timestamp"].map(pd.Timestamp.isoformat))["anomaly"]
    served = {p["timestamp"]: p for p in predictions}
    assert len(served) == 48
    for timestamp, prediction in served.items():
        stamp = pd.Timestamp(timestamp).isoformat()
        assert prediction["anomaly"] == bool(flagged[stamp])
        assert prediction["anomaly_score"] >= 0
    # The events cover exactly the flagged rows, each peaking past the threshold.
    events = response.json()["events"]
    assert events, "the demo set's test part has anomalies"
    spans = [(pd.Timestamp(e["start"]), pd.Timestamp(e["end"])) for e in events]
    for row in response.json()["predictions"]:
        at = pd.Timestamp(row["timestamp"])
        assert row["anomaly"] == any(start <= at <= end for start, end in spans)
    threshold = artifact.metadata["anomaly_detector"]["threshold"]
    assert all(e["peak_score"] > threshold and e["severity"] for e in events)
    logged = await deployed.http.post(
        f"/ai/models/{job['model_id']}/predict", json={"rows": rows, "log": True}
    )
    assert logged.status_code == 422, logged.text
    assert logged.json()["detail"][0]["loc"] == ["body", "log"]


async def evaluated_rows(
    deployed: Deployed, model_id: str, **params: str | int
) -> list[dict[str, Any]]:
    """Every row of a model's test predictions, page by page."""
    rows: list[dict[str, Any]] = []
    while True:
        response = await deployed.http.get(
            f"/ai/models/{model_id}/test-predictions",
            params={**params, "page": len(rows) // 1000 + 1, "page_size": 1000},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        rows += page["predictions"]
        if len(rows) >= page["total"]:
            assert len(rows) == page["total"]
            return rows


async def test_test_predictions_are_the_evaluated_test_period(deployed: Deployed) -> None:
    job = await completed(deployed, f"testp-{uuid.uuid4().hex[:8]}", P10_P90)
    model_id = job["model_id"]
    served = await evaluated_rows(deployed, model_id)
    model = (await deployed.http.get(f"/ai/models/{model_id}")).json()
    evaluated = pd.read_parquet(Path(model["artifact_uri"]) / PREDICTIONS_FILE)
    assert len(served) == len(evaluated) > 0
    np.testing.assert_allclose([p["actual"] for p in served], evaluated["actual"])
    np.testing.assert_allclose([p["predicted"] for p in served], evaluated["predicted"])
    mae = float(np.mean(np.abs(evaluated["actual"] - evaluated["predicted"])))
    assert mae == pytest.approx(model["metrics"]["mae"], rel=1e-6)
    # The quantiles too, and their coverage is the job's metric.
    for key in ("0.1", "0.5", "0.9"):
        np.testing.assert_allclose([p["quantiles"][key] for p in served], evaluated[f"q{key}"])
    actual = evaluated["actual"].to_numpy()
    inside = (actual >= evaluated["q0.1"]) & (actual <= evaluated["q0.9"])
    assert float(inside.mean()) == pytest.approx(model["metrics"]["coverage_80"], rel=1e-9)
    # ... and the job's experiment gives the interval's coverage on each calibration window.
    [experiment] = (
        await deployed.http.get("/ai/training/experiments", params={"job_id": job["job_id"]})
    ).json()["experiments"]
    calibrated = await deployed.http.get(
        f"/ai/training/experiments/{experiment['experiment_id']}/metrics",
        params={"name": "calibration_coverage_80"},
    )
    windows = calibrated.json()["points"]
    assert [p["step"] for p in windows] == [1, 2, 3, 4]
    assert 0.6 < np.mean([p["value"] for p in windows]) < 1.0  # its residuals made it
    assert model["feature_importance"]["lag_24"] > 0
    assert set(model["feature_importance"]) == set(model["features"])
    missing = await deployed.http.get("/ai/models/tenant-a:none:1/test-predictions")
    assert missing.status_code == 404


async def test_test_predictions_come_a_page_at_a_time_or_whole_as_csv(deployed: Deployed) -> None:
    """A large test period (175k rows for 100 meters over two years) is never one response:
    pages of at most 1000 rows with the total, one series' rows, or all of it as CSV."""
    name = f"paged_{uuid.uuid4().hex[:8]}"
    upload = await deployed.http.put(
        f"/ai/training/feature-sets/{name}",
        params={"timestamp_column": "ts", "target_column": "demand", "series_column": "meter"},
        content=two_meters_csv(),
    )
    assert upload.status_code == 200, upload.text
    job = await completed(deployed, name, {"feature_set": name, "target_variable": "demand"})
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()
    evaluated = pd.read_parquet(Path(model["artifact_uri"]) / PREDICTIONS_FILE)
    url = f"/ai/models/{job['model_id']}/test-predictions"

    first = (await deployed.http.get(url)).json()
    assert (first["total"], first["page"], first["page_size"]) == (len(evaluated), 1, 100)
    assert len(first["predictions"]) == 100 < len(evaluated)
    pages = [
        (await deployed.http.get(url, params={"page": page, "page_size": 250})).json()
        for page in range(1, len(evaluated) // 250 + 3)
    ]
    assert pages[-1]["predictions"] == []  # past the end: empty, with the total
    assert {p["total"] for p in pages} == {len(evaluated)}
    rows = [row for p in pages for row in p["predictions"]]
    assert [r["series"] for r in rows] == evaluated["series"].tolist()
    np.testing.assert_allclose([r["predicted"] for r in rows], evaluated["predicted"])
    for size in (0, 1001):
        assert (await deployed.http.get(url, params={"page_size": size})).status_code == 422

    north = await evaluated_rows(deployed, job["model_id"], series="north")
    assert len(north) == int((evaluated["series"] == "north").sum()) > 0
    assert {r["series"] for r in north} == {"north"}
    nowhere = (await deployed.http.get(url, params={"series": "west"})).json()
    assert (nowhere["total"], nowhere["predictions"]) == (0, [])

    download = await deployed.http.get(url, headers={"Accept": "text/csv"})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(download.text))
    assert list(table.columns) == list(evaluated.columns)
    np.testing.assert_allclose(table["actual"], evaluated["actual"])
    south = await deployed.http.get(url, params={"series": "south"}, headers={"Accept": "text/csv"})
    assert set(pd.read_csv(io.StringIO(south.text))["series"]) == {"south"}
