"""``trainctl policies`` (retrain policies) and ``trainctl models monitoring`` over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from serve_app.cli_http import add_switches, console, request

policies_app = typer.Typer(help="Retrain policies: on drift, on new data, on a schedule.")

API = "/ai/training/retrain-policies"


@policies_app.command("create")
def policies_create(
    model_name: Annotated[str, typer.Option()] = "load_forecast",
    tenant: Annotated[str, typer.Option()] = "default",
    feature_set: Annotated[str, typer.Option()] = "forecast_basic",
    target: Annotated[str, typer.Option(help="Target column.")] = "load_kw",
    job_file: Annotated[
        Path | None, typer.Option(help="A start-job body (JSON) instead of the options above.")
    ] = None,
    drift: Annotated[
        int | None, typer.Option(help="Retrain after N scored forecasts in a row drifted.")
    ] = None,
    new_rows: Annotated[int | None, typer.Option(help="Retrain after N new rows.")] = None,
    new_days: Annotated[float | None, typer.Option(help="Retrain after N new days.")] = None,
    cron: Annotated[str | None, typer.Option(help="Retrain on a schedule ('0 2 * * *').")] = None,
    cooldown: Annotated[str, typer.Option(help="ISO 8601 (P1D).")] = "P1D",
    max_per_day: Annotated[int, typer.Option()] = 2,
    cold: Annotated[
        bool, typer.Option(help="Do not start from the champion's parameters.")
    ] = False,
) -> None:
    """Create a model's retrain policy (one per tenant and model name)."""
    job: dict[str, Any]
    if job_file is not None:
        job = json.loads(job_file.read_text())
    else:
        job = {
            "tenant_id": tenant,
            "model_type": "forecast",
            "model_name": model_name,
            "config": {"feature_set": feature_set, "target_variable": target},
        }
    rules = {"drift_evaluations": drift, "new_rows": new_rows, "new_days": new_days, "cron": cron}
    body = {
        "job": job,
        "rules": {k: v for k, v in rules.items() if v is not None},
        "cooldown": cooldown,
        "max_per_day": max_per_day,
        "warm_start": not cold,
    }
    policy = request("POST", API, json=body)
    console.print(f"policy {policy['policy_id']} created for {policy['model_name']}")


@policies_app.command("list")
def policies_list(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    params = {"tenant_id": tenant} if tenant else {}
    table = Table("policy", "tenant", "model", "rules", "cooldown (h)", "per day", "on")
    for p in request("GET", API, params=params)["policies"]:
        rules = ", ".join(f"{k}={v}" for k, v in p["rules"].items() if v is not None)
        table.add_row(
            p["policy_id"],
            p["tenant_id"],
            p["model_name"],
            rules,
            f"{p['cooldown_seconds'] / 3600:g}",
            str(p["max_per_day"]),
            "yes" if p["enabled"] else "no",
        )
    console.print(table)


@policies_app.command("triggers")
def policies_triggers(policy_id: str) -> None:
    """The retrains a policy started: when, which rule, on what evidence."""
    table = Table("fired", "rule", "job", "evidence")
    for t in request("GET", f"{API}/{policy_id}/triggers")["triggers"]:
        table.add_row(t["fired_at"][:19], t["rule"], t["job_id"], json.dumps(t["evidence"]))
    console.print(table)


add_switches(policies_app, API)


def monitoring(model_id: str) -> None:
    """A model's served forecasts scored against their actuals, and its drift status."""
    found = request("GET", f"/ai/models/{model_id}/monitoring", params={"page_size": 30})
    test = found["test"]
    status = found["status"]
    if status is None:
        console.print("no forecast of this model has actuals yet")
        return
    accuracy = status["accuracy"] or {}
    live, tested = accuracy.get("live_mae", float("nan")), test.get("mae", float("nan"))
    console.print(
        f"[bold]{status['status']}[/bold]: live MAE {live:.4g} over "
        f"{accuracy.get('windows')} forecast(s), test MAE {tested:.4g}, "
        f"ratio {accuracy.get('ratio')}"
    )
    table = Table("forecast date", "rows", "MAE", "bias", "coverage 80", "status")
    for e in found["evaluations"]:
        m = e["metrics"]
        table.add_row(
            e["origin"][:16],
            str(e["rows"]),
            f"{m['mae']:.4g}",
            f"{m['bias']:.4g}",
            f"{m['coverage_80']:.2f}" if "coverage_80" in m else "-",
            e["health"]["status"],
        )
    console.print(table)
