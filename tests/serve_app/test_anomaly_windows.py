"""Incidents a team knows as time ranges label a set: an anomaly job is scored on them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.models.artifacts import PREDICTIONS_FILE
from pipeline.scoring.labelled import label_scores, runs
from pipeline.store.demo import load_series, with_anomalies
from pipeline.versions.importing import LABEL_COLUMN
from serve_app.cli import app
from tests.serve_app.conftest import Deployed

URL = "/ai/training/feature-sets/incidents"


async def test_uploaded_windows_label_an_anomaly_job(deployed: Deployed) -> None:
    labelled = with_anomalies(load_series(seed=5, hours=24 * 90), seed=6, rate=0.003)
    uploaded = await deployed.http.put(
        URL,
        params={"timestamp_column": "timestamp", "target_column": "load_kw"},
        content=labelled.drop(columns=[LABEL_COLUMN]).to_csv(index=False).encode(),
    )
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["label_column"] is None
    stamps = pd.to_datetime(labelled["timestamp"], utc=True)
    windows = [
        {"start": stamps[a].isoformat(), "end": stamps[b].isoformat()}
        for a, b in runs(labelled[LABEL_COLUMN].to_numpy())
    ]

    # A window ending before it starts, holding none of the set's rows, or naming a series
    # of a one-series set: 422, nothing stored.
    backwards = [{"start": windows[0]["end"], "end": "2000-01-01T00:00:00Z"}]
    long_before = [{"start": "1990-01-01T00:00:00Z", "end": "1990-01-02T00:00:00Z"}]
    for bad, field in (
        (backwards, "end"),
        (long_before, "start"),
        ([{**windows[0], "series": "north"}], "series"),
    ):
        refused = await deployed.http.put(f"{URL}/anomaly-windows", json={"windows": bad})
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["loc"][-1] == field
    assert (await deployed.http.get(f"{URL}/anomaly-windows")).json() == {"windows": []}
    naive = await deployed.http.put(
        f"{URL}/anomaly-windows",
        json={"windows": [{"start": "2024-01-01T00:00:00", "end": "2024-01-02T00:00:00Z"}]},
    )
    assert naive.status_code == 422  # a time without its zone is ambiguous

    stored = await deployed.http.put(f"{URL}/anomaly-windows", json={"windows": windows})
    assert stored.status_code == 200, stored.text
    kept = (await deployed.http.get(f"{URL}/anomaly-windows")).json()["windows"]
    assert [pd.Timestamp(w["start"]) for w in kept] == [pd.Timestamp(w["start"]) for w in windows]

    job_id = await deployed.submit(
        {
            "feature_set": "incidents",
            "target_variable": "load_kw",
            "horizon": 1,
            "hyperparameters": {"n_estimators": 60, "learning_rate": 0.2},
            "quantiles": [],
        },
        model_type="anomaly",
        model_name="incidents",
    )
    job = await deployed.wait_finished(job_id)
    assert job["status"] == "completed", job
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()
    tested = pd.read_parquet(Path(model["artifact_uri"]) / PREDICTIONS_FILE)
    truth = labelled.assign(timestamp=stamps).set_index("timestamp")[LABEL_COLUMN]
    labels = truth.loc[pd.to_datetime(tested["timestamp"], utc=True)].to_numpy(dtype=bool)
    assert labels.any(), "the test part holds an incident"
    expected = label_scores(tested["anomaly"].to_numpy(), labels, pd.Timedelta(hours=1))
    for name, value in expected.items():
        assert job["metrics"][name] == pytest.approx(value, rel=1e-12), name
    assert job["metrics"]["event_recall"] > 0


def test_trainctl_features_windows(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAINING_API_URL", deployed.running.api_url)
    monkeypatch.setenv("TRAINING_API_KEY", deployed.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()
    data = tmp_path / "rows.csv"
    load_series(seed=7, hours=24 * 30).to_csv(data, index=False)
    columns = ["--timestamp-column=timestamp", "--target-column=load_kw"]
    assert cli.invoke(app, ["features", "import", "tickets", str(data), *columns]).exit_code == 0
    windows = tmp_path / "windows.csv"
    windows.write_text("start,end\n2024-01-03T10:00:00Z,2024-01-03T12:00:00Z\n")
    stored = cli.invoke(app, ["features", "windows", "tickets", str(windows)])
    assert stored.exit_code == 0, stored.output
    shown = cli.invoke(app, ["features", "windows", "tickets"])
    assert "2024-01-03T10:00:00Z" in shown.output
    assert "2024-01-03T12:00:00Z" in shown.output
    windows.write_text("start,end\n2024-01-03T12:00:00Z,2024-01-03T10:00:00Z\n")
    refused = cli.invoke(app, ["features", "windows", "tickets", str(windows)])
    assert refused.exit_code == 1
    assert "end is before start" in refused.output
