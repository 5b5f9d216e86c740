"""Users bring their own data: upload, list, train on it; bad files store nothing."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest

from pipeline.storage import Location
from pipeline.store.demo import load_series
from pipeline.versions.importing import Columns, write_partitioned
from tests.serve_app.conftest import Deployed


def two_meters_csv() -> bytes:
    a = load_series(seed=1, hours=24 * 120).assign(meter="north")
    b = load_series(seed=2, hours=24 * 120).assign(meter="south")
    table = pd.concat([a, b]).rename(columns={"timestamp": "ts", "load_kw": "demand"})
    return table.to_csv(index=False).encode()


async def test_upload_list_and_train_on_a_multi_series_csv(deployed: Deployed) -> None:
    response = await deployed.http.put(
        "/ai/training/feature-sets/meters",
        params={"timestamp_column": "ts", "target_column": "demand", "series_column": "meter"},
        content=two_meters_csv(),
    )
    assert response.status_code == 200, response.text
    stored = response.json()
    assert stored["rows"] == 2 * 24 * 120
    assert stored["series_column"] == "meter"
    assert stored["covariates"] == ["temperature_c", "humidity_pct"]

    listed = (await deployed.http.get("/ai/training/feature-sets")).json()["feature_sets"]
    assert {"forecast_basic", "anomaly_basic", "meters"} <= {fs["name"] for fs in listed}

    job_id = await deployed.submit(
        {"feature_set": "meters", "target_variable": "demand", "horizon": 6}, model_name="meters"
    )
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job
    assert job["metrics"]["mae"] < job["metrics"]["naive_mae"]

    # The job pinned the version it read; the model and its experiment keep it.
    assert job["feature_set_version"] == stored["version"]
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()
    assert model["feature_set_version"] == stored["version"]
    experiments = await deployed.http.get("/ai/training/experiments", params={"job_id": job_id})
    trained = [e for e in experiments.json()["experiments"] if "attempt" in e["name"]]
    detail = await deployed.http.get(f"/ai/training/experiments/{trained[0]['experiment_id']}")
    assert detail.json()["params"]["feature_set_version"] == stored["version"]
    assert detail.json()["job"]["feature_set_version"] == stored["version"]

    # A new import is a new current version; the one the model was trained on is kept.
    replaced = await deployed.http.put(
        "/ai/training/feature-sets/meters",
        params={"timestamp_column": "ts", "target_column": "demand", "series_column": "meter"},
        content=two_meters_csv(),
    )
    assert replaced.json()["version"] != stored["version"]
    versions = (await deployed.http.get("/ai/training/feature-sets/meters/versions")).json()
    assert [v["version"] for v in versions["feature_sets"]] == [
        stored["version"],
        replaced.json()["version"],
    ]


async def test_parquet_upload_is_accepted(deployed: Deployed) -> None:
    buffer = io.BytesIO()
    load_series(seed=3, hours=24 * 60).to_parquet(buffer, index=False)
    response = await deployed.http.put(
        "/ai/training/feature-sets/parquet_set",
        params={"timestamp_column": "timestamp", "target_column": "load_kw"},
        content=buffer.getvalue(),
    )
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == 24 * 60
    described = (await deployed.http.get("/ai/training/feature-sets/parquet_set")).json()
    assert described["target_column"] == "load_kw"


CSV = b"ts,demand,temp\n2025-01-01T00:00:00Z,1.0,3\n2025-01-01T01:00:00Z,2.0,4\n"


@pytest.mark.parametrize(
    ("body", "params", "field"),
    [
        (b"\x00\x01garbage\xff\xfe", {}, "body"),
        (b"", {}, "body"),
        (CSV, {"target_column": "missing"}, "target_column"),
        (CSV, {"timestamp_column": "nope"}, "timestamp_column"),
        (b"ts,demand\n2025-01-01,high\n2025-01-02,low\n", {}, "target_column"),
        (b"ts,demand\nnot-a-date,1\n", {}, "timestamp_column"),
        (b"ts,demand\n2025-01-01,1\n2025-01-01,2\n", {}, "timestamp_column"),
        (b"ts,demand,region\n2025-01-01,1,north\n", {}, "body"),
    ],
    ids=[
        "binary-garbage",
        "empty",
        "missing-target",
        "missing-timestamp",
        "text-target",
        "bad-timestamp",
        "duplicate-timestamp",
        "text-covariate",
    ],
)
async def test_bad_upload_is_422_and_stores_nothing(
    deployed: Deployed, body: bytes, params: dict[str, str], field: str
) -> None:
    query = {"timestamp_column": "ts", "target_column": "demand", **params}
    response = await deployed.http.put(
        "/ai/training/feature-sets/rejected", params=query, content=body
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert (await deployed.http.get("/ai/training/feature-sets/rejected")).status_code == 404
    assert not (deployed.data_dir / "features" / "rejected").exists()


@pytest.mark.parametrize("name", ["..", ".hidden", "a b", "x" * 200])
async def test_unsafe_feature_set_names_are_refused(deployed: Deployed, name: str) -> None:
    response = await deployed.http.put(
        f"/ai/training/feature-sets/{name}",
        params={"timestamp_column": "ts", "target_column": "demand"},
        content=CSV,
    )
    assert response.status_code in (404, 422)
    names = {p.name for p in (deployed.data_dir / "features").iterdir()}
    assert name not in names


async def test_missing_query_parameters_are_422(deployed: Deployed) -> None:
    response = await deployed.http.put("/ai/training/feature-sets/x", content=CSV)
    assert response.status_code == 422
    fields = {d["loc"][-1] for d in response.json()["detail"]}
    assert fields == {"timestamp_column", "target_column"}


async def test_an_upload_killed_mid_write_leaves_the_set_as_it_was(deployed: Deployed) -> None:
    """An API replica killed mid-upload leaves the new version's files without the record
    that publishes it: the set lists, reads, trains and is replaced at its previous version,
    and retention runs past the files (it removes them a day later:
    tests/pipeline/versions/test_publication.py)."""
    name = f"killed_{uuid.uuid4().hex[:8]}"
    params = {"timestamp_column": "ts", "target_column": "demand", "series_column": "meter"}
    first = await deployed.http.put(
        f"/ai/training/feature-sets/{name}", params=params, content=two_meters_csv()
    )
    assert first.status_code == 200, first.text
    version = first.json()["version"]
    # What the import of the next upload had written when its replica was killed.
    interrupted = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-0badc0de"
    versions = Location(str(deployed.data_dir / "features")) / name / "versions"
    table = load_series(seed=5, hours=200).rename(columns={"timestamp": "ts", "load_kw": "demand"})
    write_partitioned(
        table.assign(meter="east"),
        Columns("ts", "demand", "meter"),
        versions / interrupted / "data",
    )

    listed = (await deployed.http.get("/ai/training/feature-sets")).json()["feature_sets"]
    assert [s["version"] for s in listed if s["name"] == name] == [version]
    described = await deployed.http.get(f"/ai/training/feature-sets/{name}")
    assert (described.status_code, described.json()["version"]) == (200, version)
    kept = await deployed.http.get(f"/ai/training/feature-sets/{name}/versions")
    assert kept.status_code == 200, kept.text
    assert [v["version"] for v in kept.json()["feature_sets"]] == [version]
    job = await deployed.wait_finished(
        await deployed.submit({"feature_set": name, "target_variable": "demand", "horizon": 6})
    )
    assert (job["status"], job["feature_set_version"]) == ("completed", version), job

    cleanup = await deployed.http.post("/ai/training/maintenance/cleanup")
    assert cleanup.status_code == 200, cleanup.text
    assert interrupted in versions.children()  # it may have been an import still writing

    second = await deployed.http.put(
        f"/ai/training/feature-sets/{name}", params=params, content=two_meters_csv()
    )
    assert second.status_code == 200, second.text
    kept = await deployed.http.get(f"/ai/training/feature-sets/{name}/versions")
    assert [v["version"] for v in kept.json()["feature_sets"]] == [
        version,
        second.json()["version"],
    ]
