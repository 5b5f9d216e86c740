"""Promotions on the deployed service: jobs compared with the champion on the same rows,
the decisions listed with their evidence, and a rollback, on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from domain.auth import Role
from pipeline.models.artifacts import load_artifact
from pipeline.storage import Location
from serve_app.cli import app
from tests.serve_app.conftest import Deployed
from tests.serve_app.test_models_api import WEAK, completed

#: Promoted only if 5 % better and a paired test over the days at least 90 % sure of it.
STRICT = {"promote_champion": True, "promotion": {"margin": 0.05, "min_confidence": 0.9}}
PROMOTION_FIELDS = {
    "promotion_id",
    "tenant_id",
    "model_name",
    "decision",
    "challenger_id",
    "champion_id",
    "job_id",
    "reason",
    "decided_at",
    "metric",
    "challenger_score",
    "champion_score",
    "confidence",
    "window_start",
    "window_end",
    "evidence",
}


async def logged(deployed: Deployed, job_id: str, stage: str) -> list[str]:
    response = await deployed.http.get(f"/ai/training/jobs/{job_id}/logs")
    return [line["message"] for line in response.json()["logs"] if line["stage"] == stage]


@pytest.mark.both_databases
async def test_promotions_on_the_same_rows_are_listed_and_rolled_back(
    deployed: Deployed,
) -> None:
    name = f"promo-{uuid.uuid4().hex[:8]}"
    base = f"/ai/models/tenant-a/{name}"
    weak = await completed(deployed, name, {**WEAK, "promote_champion": True})
    strong = await completed(deployed, name, {**STRICT})
    weaker = await completed(deployed, name, {**WEAK, **STRICT})
    champion = (await deployed.http.get(f"{base}@champion")).json()
    assert champion["model_id"] == strong["model_id"]
    compared = await logged(deployed, weaker["job_id"], "compare")
    assert any("does not beat the champion by the margin" in m for m in compared), compared
    decided = f"champion stays {strong['model_id']}: does not beat the champion by the margin"
    registered = await logged(deployed, weaker["job_id"], "register")
    assert any(m.startswith(decided) for m in registered), registered

    listed = await deployed.http.get(f"{base}/promotions")
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert (page["total"], page["page"], page["page_size"]) == (3, 1, 20)
    kept, promoted, first = page["promotions"]
    assert all(set(p) == PROMOTION_FIELDS for p in page["promotions"])
    assert [p["decision"] for p in page["promotions"]] == ["kept", "promoted", "promoted"]
    assert [p["job_id"] for p in page["promotions"]] == [
        weaker["job_id"],
        strong["job_id"],
        weak["job_id"],
    ]
    assert (first["champion_id"], first["reason"], first["evidence"]) == (None, "no champion", {})
    assert promoted["challenger_id"] == strong["model_id"]
    assert promoted["champion_id"] == weak["model_id"]
    assert promoted["metric"] == "mae"
    # The whole test part of the newer model postdates the older one's training data.
    assert promoted["challenger_score"] == pytest.approx(strong["metrics"]["mae"])
    assert promoted["challenger_score"] < 0.95 * promoted["champion_score"]
    assert promoted["confidence"] >= 0.9
    evidence: dict[str, Any] = promoted["evidence"]
    assert (evidence["margin"], evidence["min_confidence"]) == (0.05, 0.9)
    assert evidence["paired_test"]["name"] == "wilcoxon_signed_rank"
    assert evidence["paired_test"]["windows"] == len(evidence["windows"]) > 1
    assert evidence["window"]["start"] == promoted["window_start"]
    assert promoted["window_start"] < promoted["window_end"]
    assert kept["champion_id"] == strong["model_id"]
    assert kept["challenger_score"] > kept["champion_score"]
    second = await deployed.http.get(f"{base}/promotions", params={"page": 2, "page_size": 2})
    assert [p["job_id"] for p in second.json()["promotions"]] == [weak["job_id"]]

    back = await deployed.http.post(f"{base}/rollback", json={"reason": "live MAE fell"})
    assert back.status_code == 200, back.text
    rolled = back.json()
    assert set(rolled) == PROMOTION_FIELDS
    assert (rolled["decision"], rolled["reason"], rolled["job_id"]) == (
        "rolled_back",
        "live MAE fell",
        None,
    )
    assert (rolled["challenger_id"], rolled["champion_id"]) == (
        strong["model_id"],
        weak["model_id"],
    )
    champion = (await deployed.http.get(f"{base}@champion")).json()
    assert champion["model_id"] == weak["model_id"]
    again = await deployed.http.post(f"{base}/rollback")
    assert again.status_code == 409, again.text
    assert "had no champion before it: nothing to roll back to" in again.json()["detail"]
    assert (await deployed.http.get(f"{base}/promotions")).json()["total"] == 4


async def test_promotions_refuse_unknown_models_bad_input_and_viewers(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"promo-{uuid.uuid4().hex[:8]}"
    base = f"/ai/models/tenant-a/{name}"
    for method in ("GET", "POST"):
        path = f"{base}/promotions" if method == "GET" else f"{base}/rollback"
        missing = await deployed.http.request(method, path)
        assert missing.status_code == 404, missing.text
        assert missing.json()["detail"] == f"model 'tenant-a:{name}' not found"
    await completed(deployed, name, {"promote_champion": True})
    nothing = await deployed.http.post(f"{base}/rollback")
    assert nothing.status_code == 409
    monkeypatch.setenv("TRAINING_API_URL", deployed.running.api_url)
    monkeypatch.setenv("TRAINING_API_KEY", deployed.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    cli = CliRunner()
    listed = cli.invoke(app, ["models", "promotions", name, "--tenant", "tenant-a", "--reasons"])
    assert listed.exit_code == 0, listed.output
    assert "promoted: no champion" in listed.output
    assert "1 of 1 (page 1)" in listed.output
    refused = cli.invoke(app, ["models", "rollback", name, "--tenant", "tenant-a"])
    assert refused.exit_code == 1
    assert "HTTP 409" in refused.output
    for bad in ({"force": True}, {"reason": ""}, {"reason": "x" * 501}):
        assert (await deployed.http.post(f"{base}/rollback", json=bad)).status_code == 422
    for query in ({"page_size": 0}, {"page_size": 101}, {"page": 0}):
        response = await deployed.http.get(f"{base}/promotions", params=query)
        assert response.status_code == 422
    viewer = deployed.client_for(await deployed.key("tenant-a", Role.VIEWER))
    other = deployed.client_for(await deployed.key("tenant-b"))
    async with viewer, other:
        assert (await viewer.get(f"{base}/promotions")).json()["total"] == 1
        assert (await viewer.post(f"{base}/rollback")).status_code == 403
        assert (await other.get(f"{base}/promotions")).status_code == 404
        assert (await other.post(f"{base}/rollback")).status_code == 404


async def test_a_champion_refitted_on_every_row_is_judged_by_the_model_its_test_scored(
    deployed: Deployed,
) -> None:
    """Refitted on every row of the set, the champion was fitted on all of a later job's
    test part: its scored boosters, kept beside the refitted ones, are compared instead,
    on the rows neither scored model was fitted on."""
    name = f"promo-{uuid.uuid4().hex[:8]}"
    refitted = {**WEAK, "promote_champion": True, "refit_on_all_rows": True}
    champion = await completed(deployed, name, refitted)
    refit = await logged(deployed, champion["job_id"], "final_refit")
    assert any(m.startswith("refitted on every row") for m in refit), refit
    model = (await deployed.http.get(f"/ai/models/{champion['model_id']}")).json()
    lineage = load_artifact(Location(model["artifact_uri"])).metadata["lineage"]
    assert lineage["out_of_sample_from"] > lineage["test_end"]
    later = await completed(deployed, name, {"promote_champion": True})
    [decision, _] = (await deployed.http.get(f"/ai/models/tenant-a/{name}/promotions")).json()[
        "promotions"
    ]
    assert (decision["decision"], decision["champion_id"]) == ("promoted", champion["model_id"])
    assert decision["window_start"] == lineage["test_start"]
    # the champion's scored boosters scored the same rows as its test part did
    assert decision["champion_score"] == pytest.approx(champion["metrics"]["mae"], rel=1e-6)
    alias = (await deployed.http.get(f"/ai/models/tenant-a/{name}@champion")).json()
    assert alias["model_id"] == later["model_id"]
