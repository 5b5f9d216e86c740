"""``trainctl schedules``: cron schedules over HTTP."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from serve_app.cli_http import JobFile, add_switches, console, json_file, request

schedules_app = typer.Typer(help="Cron schedules that retrain on their own.")

API = "/ai/training/schedules"


@schedules_app.command("create")
def schedules_create(
    name: str,
    cron: Annotated[str, typer.Option(help="Five fields, e.g. '0 2 * * *'.")],
    timezone: Annotated[str, typer.Option(help="IANA zone of the cron times.")] = "UTC",
    window: Annotated[
        str, typer.Option(help="Training window before each fire, ISO 8601 (P365D).")
    ] = "P365D",
    tenant: Annotated[str, typer.Option()] = "default",
    model_name: Annotated[str, typer.Option()] = "load_forecast",
    feature_set: Annotated[str, typer.Option()] = "forecast_basic",
    target: Annotated[str, typer.Option(help="Target column.")] = "load_kw",
    job_file: JobFile = None,
    allow_overlap: Annotated[
        bool, typer.Option(help="Fire even while the previous run is still going.")
    ] = False,
    disabled: Annotated[bool, typer.Option(help="Create it switched off.")] = False,
) -> None:
    """Create a schedule; each fire trains on [fire time - window, fire time)."""
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
    body = {
        "name": name,
        "cron": cron,
        "timezone": timezone,
        "window": window,
        "job": job,
        "enabled": not disabled,
        "concurrency_policy": "allow" if allow_overlap else "forbid",
    }
    schedule = request("POST", API, json=body)
    console.print(f"schedule {schedule['schedule_id']} created; next: {schedule['next_fires'][0]}")


@schedules_app.command("list")
def schedules_list(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    params = {"tenant_id": tenant} if tenant else {}
    schedules = request("GET", API, params=params)["schedules"]
    table = Table("schedule", "tenant", "name", "cron", "zone", "on", "next fire", "last fire")
    for s in schedules:
        table.add_row(
            s["schedule_id"],
            s["tenant_id"],
            s["name"],
            s["cron"],
            s["timezone"],
            "yes" if s["enabled"] else "no",
            s["next_fires"][0][:16] if s["next_fires"] else "-",
            (s["last_fire_at"] or "-")[:16],
        )
    console.print(table)


@schedules_app.command("show")
def schedules_show(schedule_id: str) -> None:
    """A schedule with its next fire times and its last runs."""
    s = request("GET", f"{API}/{schedule_id}")
    console.print(f"[bold]{s['name']}[/bold] {s['schedule_id']} ({s['tenant_id']})")
    console.print(f"cron {s['cron']} in {s['timezone']}, {s['concurrency_policy']} overlap")
    console.print(f"enabled {s['enabled']}, window {s['window_seconds'] / 86_400:g} days")
    console.print("next fires: " + ", ".join(s["next_fires"]))
    console.print("last runs: " + (", ".join(s["recent_job_ids"]) or "none"))


add_switches(schedules_app, API)
