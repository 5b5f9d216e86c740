"""``trainctl policies`` (retrain policies) and ``trainctl models monitoring`` over HTTP."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from serve_app.cli_http import JobFile, add_switches, console, json_file, request

policies_app = typer.Typer(help="Retrain policies: on drift, on new data, on a schedule.")

API = "/ai/training/retrain-policies"

RollbackAfter = Annotated[
    int | None,
    typer.Option(
        help="Roll a new champion back once N of its scored forecasts show the previous one "
        "better on the same rows (the rule's other options below)."
    ),
]
RollbackMetric = Annotated[str, typer.Option(help="mae, wql or coverage_error.")]
RollbackMargin = Annotated[float, typer.Option(help="How much better the previous one must be.")]
RollbackConfidence = Annotated[
    float, typer.Option(help="How sure the paired daily test must be (0-1).")
]


def rollback_rule(after: int | None, metric: str, margin: float, confidence: float) -> Any:
    """The policy's ``rollback`` body (None: off)."""
    if after is None:
        return None
    return {
        "after_forecasts": after,
        "metric": metric,
        "margin": margin,
        "min_confidence": confidence,
    }


@policies_app.command("create")
def policies_create(
    model_name: Annotated[str, typer.Option()] = "load_forecast",
    tenant: Annotated[str, typer.Option()] = "default",
    feature_set: Annotated[str, typer.Option()] = "forecast_basic",
    target: Annotated[str, typer.Option(help="Target column.")] = "load_kw",
    job_file: JobFile = None,
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
    rollback_after: RollbackAfter = None,
    rollback_metric: RollbackMetric = "mae",
    rollback_margin: RollbackMargin = 0.0,
    rollback_confidence: RollbackConfidence = 0.9,
) -> None:
    """Create a model's retrain policy (one per tenant and model name)."""
    job: dict[str, Any]
    if job_file is not None:
        job = json_file(job_file, "--job-file")
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
        "rollback": rollback_rule(
            rollback_after, rollback_metric, rollback_margin, rollback_confidence
        ),
    }
    policy = request("POST", API, json=body)
    console.print(f"policy {policy['policy_id']} created for {policy['model_name']}")


@policies_app.command("update")
def policies_update(
    policy_id: str,
    rollback_after: RollbackAfter = None,
    rollback_metric: RollbackMetric = "mae",
    rollback_margin: RollbackMargin = 0.0,
    rollback_confidence: RollbackConfidence = 0.9,
    no_rollback: Annotated[bool, typer.Option(help="Turn automatic rollback off.")] = False,
) -> None:
    """Change a policy's rollback rule (other fields: PATCH the API)."""
    if no_rollback == (rollback_after is not None):
        console.print("give either --rollback-after or --no-rollback")
        raise typer.Exit(2)
    rule = rollback_rule(rollback_after, rollback_metric, rollback_margin, rollback_confidence)
    policy = request("PATCH", f"{API}/{policy_id}", json={"rollback": rule})
    console.print(f"policy {policy['policy_id']}: rollback {policy['rollback'] or 'off'}")


@policies_app.command("list")
def policies_list(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    params = {"tenant_id": tenant} if tenant else {}
    table = Table("policy", "tenant", "model", "rules", "cooldown (h)", "per day", "on")
    for p in request("GET", API, params=params)["policies"]:
        rules = ", ".join(f"{k}={v}" for k, v in p["rules"].items() if v is not None)
        if p.get("rollback"):
            rules += f", rollback after {p['rollback']['after_forecasts']}"
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
    if not found["evaluations"]:
        console.print("no forecast of this model has actuals yet")
        return
    if status is None:
        console.print("not judged yet: no forecast has actuals for 90 % of its rows")
    else:
        accuracy = status["accuracy"] or {}
        live, tested = accuracy.get("live_mae", float("nan")), test.get("mae", float("nan"))
        console.print(
            f"[bold]{status['status']}[/bold]: live MAE {live:.4g} over "
            f"{accuracy.get('windows')} forecast(s), test MAE {tested:.4g}, "
            f"ratio {accuracy.get('ratio')}"
        )
    table = Table(
        "forecast date", "rows", "MAE", "bias", "coverage 80", "status", "previous champion's MAE"
    )
    for e in found["evaluations"]:
        m = e["metrics"]
        table.add_row(
            e["origin"][:16],
            str(e["rows"]),
            f"{m['mae']:.4g}",
            f"{m['bias']:.4g}",
            f"{m['coverage_80']:.2f}" if "coverage_80" in m else "-",
            (e["health"] or {"status": "-"})["status"],
            _previous_mae(e.get("shadow")),
        )
    console.print(table)


def _previous_mae(shadow: dict[str, Any] | None) -> str:
    """The previous champion's MAE beside the model's on the same rows, if computed."""
    pair = (shadow or {}).get("metrics", {}).get("mae")
    if not pair or pair["previous"] is None or pair["model"] is None:
        return "-"
    return f"{pair['previous']:.4g} (model {pair['model']:.4g})"
