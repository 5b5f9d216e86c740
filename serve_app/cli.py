"""``trainctl``: run the service, and drive it over HTTP (``TRAINING_API_URL``)."""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from db.keys import parse_key
from domain.errors import Conflict, ServiceUnavailable
from domain.redaction import redact, redact_url, secrets_of
from serve_app.cli_detections import detect, detections_app
from serve_app.cli_features import features_app
from serve_app.cli_forecasts import forecast, forecasts
from serve_app.cli_http import console, poll, request
from serve_app.cli_keys import keys_app
from serve_app.cli_policies import monitoring, policies_app
from serve_app.cli_promotions import promotions, rollback
from serve_app.cli_schedules import schedules_app
from serve_app.cli_studies import studies_app
from serve_app.cli_tracking import experiments_app, models_app

app = typer.Typer(help="Train, track and register LightGBM models on a Ray cluster.")
app.add_typer(features_app, name="features")
app.add_typer(experiments_app, name="experiments")
app.add_typer(models_app, name="models")
app.add_typer(keys_app, name="keys")
app.add_typer(schedules_app, name="schedules")
app.add_typer(policies_app, name="policies")
app.add_typer(studies_app, name="studies")
app.add_typer(detections_app, name="detections")
app.command()(forecast)
app.command()(forecasts)
app.command()(detect)
models_app.command()(promotions)
models_app.command()(rollback)
models_app.command()(monitoring)

FINISHED = {"completed", "failed", "cancelled"}


@app.command()
def up(
    host: Annotated[str | None, typer.Option(help="Address the API binds to.")] = None,
    port: Annotated[int | None, typer.Option(help="Port of the API.")] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join ('auto'); default: start one.")
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Feature sets, artifacts, SQLite.")] = None,
    serve_config: Annotated[
        Path | None,
        typer.Option(
            envvar="TRAINING_SERVE_CONFIG",
            help="The app's Serve config; default: deploy/serve_config.yaml.",
        ),
    ] = None,
) -> None:
    """Run the service in the foreground until Ctrl-C or SIGTERM: the application of the
    Serve config (deploy/serve_config.yaml), its args and these options over the
    environment's settings."""
    import yaml
    from sqlalchemy.exc import DBAPIError

    from db.database import UnusableDatabaseUrl
    from serve_app.serve_config import SERVE_CONFIG, load_application
    from serve_app.service import abandon, bootstrap, service_config, stop

    serve_config = serve_config or SERVE_CONFIG
    given = {"data_dir": data_dir, "database_url": database_url, "host": host, "port": port}
    options: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    try:
        application = load_application(serve_config)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: Serve's schema too
        console.print(f"[red]error[/red] serve config {serve_config}: {exc}")
        raise typer.Exit(code=2) from exc
    try:
        config = service_config({**application.args, **options})
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            console.print(f"[red]error[/red] {where}: {error['msg']}")
        raise typer.Exit(code=2) from exc
    except ValueError as exc:  # the admin key; its message never holds the key
        console.print(f"[red]error[/red] admin key: {exc}")
        raise typer.Exit(code=2) from exc
    try:
        service = bootstrap(config, address, serve_config)
    except KeyboardInterrupt:  # before the handlers below: what started is stopped
        console.print("Interrupted while starting; stopping what started...")
        abandon(config)
        raise typer.Exit(code=130) from None
    except Conflict as exc:  # the admin key's id is taken, or it was revoked
        console.print(f"[red]error[/red] admin key: {exc.message}")
        raise typer.Exit(code=2) from exc
    except (ServiceUnavailable, UnusableDatabaseUrl, DBAPIError) as exc:
        reason = redact(str(exc), secrets_of(config.database_url))
        console.print(f"[red]error[/red] database {redact_url(config.database_url)}: {reason}")
        raise typer.Exit(code=2) from None
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own
        signal.signal(signum, lambda *_: stopping.set())
    console.print(f"API        {service.api_url}")
    console.print(f"API docs   {service.api_url}/docs")
    console.print(f"Dashboard  {service.dashboard_url or 'not available'}")
    console.print(f"Database   {redact_url(config.database_url)}")
    if config.admin_key is not None:
        key_id, _ = parse_key(config.admin_key.get_secret_value())
        console.print(f"Admin key  {key_id} (its secret is never printed)")
    console.print("Ready. Press Ctrl-C to stop.")
    while not stopping.wait(0.5):
        pass
    console.print("Stopping...")
    stop(service)


@app.command()
def submit(
    feature_set: Annotated[str, typer.Option()] = "forecast_basic",
    target: Annotated[str, typer.Option(help="Target column.")] = "load_kw",
    tenant: Annotated[str, typer.Option()] = "default",
    model_name: Annotated[str, typer.Option()] = "load_forecast",
    model_type: Annotated[str, typer.Option(help="forecast or anomaly")] = "forecast",
    horizon: Annotated[
        int | None, typer.Option(help="Steps ahead (default: 24; an anomaly job's: 1).")
    ] = None,
    start_date: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    end_date: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    validation_split: Annotated[float, typer.Option()] = 0.2,
    test_split: Annotated[float, typer.Option()] = 0.1,
    priority: Annotated[str, typer.Option(help="low, normal, high or urgent")] = "normal",
    param: Annotated[
        list[str] | None, typer.Option(help="LightGBM parameter NAME=VALUE (repeatable).")
    ] = None,
    hpo: Annotated[bool, typer.Option(help="Search hyperparameters with Optuna.")] = False,
    trials: Annotated[int | None, typer.Option(help="HPO: number of trials.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="HPO: trials at once; otherwise training CPUs.")
    ] = None,
    holidays: Annotated[
        str | None, typer.Option(help="Holiday calendar for an is_holiday feature: FR, AU-VIC.")
    ] = None,
    quantiles: Annotated[
        str | None,
        typer.Option(help="Forecast quantiles, comma-separated (default 0.1,0.5,0.9); none."),
    ] = None,
    backtest_windows: Annotated[
        int | None, typer.Option(help="Rolling-origin backtest: windows over the latest data.")
    ] = None,
    backtest_step: Annotated[
        int | None, typer.Option(help="Backtest: steps between origins (default: horizon).")
    ] = None,
    per_series: Annotated[
        bool, typer.Option(help="One model per series of a multi-series set.")
    ] = False,
    quantile_method: Annotated[
        str | None, typer.Option(help="conformal (default) or quantile_boosters.")
    ] = None,
    time_budget: Annotated[
        float | None, typer.Option(help="Seconds the train stage may take.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Show progress until the job ends.")] = False,
) -> None:
    """Queue a training job. A --param value may be a JSON search spec with --hpo, e.g.
    learning_rate='{"type": "loguniform", "low": 0.01, "high": 0.3}'."""
    config: dict[str, Any] = {
        "feature_set": feature_set,
        "target_variable": target,
        "validation_split": validation_split,
        "test_split": test_split,
        "hyperparameters": dict(_parse_param(p) for p in param or []),
        "enable_hpo": hpo,
    }
    for key, option in (("horizon", horizon), ("n_trials", trials), ("n_workers", workers)):
        if option is not None:
            config[key] = option
    for key, value in (("start_date", start_date), ("end_date", end_date)):
        if value is not None:
            config[key] = value.strftime("%Y-%m-%dT00:00:00Z")
    if holidays is not None:
        config["holidays"] = holidays
    if quantiles is not None:
        config["quantiles"] = _parse_quantiles(quantiles)
    if per_series:
        config["per_series"] = True
    for key, setting in (("quantile_method", quantile_method), ("time_budget_s", time_budget)):
        if setting is not None:
            config[key] = setting
    if backtest_windows is not None:
        config["backtest"] = {"windows": backtest_windows, "step": backtest_step}
    elif backtest_step is not None:
        raise typer.BadParameter("--backtest-step needs --backtest-windows")
    body = {
        "tenant_id": tenant,
        "model_type": model_type,
        "model_name": model_name,
        "config": config,
        "priority": priority,
    }
    created = request("POST", "/ai/training/jobs/start", json=body)
    console.print(f"queued {created['job_id']} (about {created['estimated_duration_seconds']}s)")
    if wait:
        watch(created["job_id"])


def _parse_quantiles(text: str) -> list[float]:
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [float(part) for part in text.split(",")]
    except ValueError as exc:
        raise typer.BadParameter(f"expected numbers like 0.1,0.5,0.9, got {text!r}") from exc


def _parse_param(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep:
        raise typer.BadParameter(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


@app.command()
def status(job_id: str) -> None:
    """Show one job."""
    job = request("GET", f"/ai/training/jobs/{job_id}")
    table = Table(show_header=False)
    for key in (
        "job_id",
        "tenant_id",
        "model_type",
        "model_name",
        "feature_set",
        "status",
        "priority",
        "progress",
        "stage",
        "attempts",
        "model_id",
        "error_message",
        "retry_of",
        "created_at",
        "started_at",
        "completed_at",
        "duration_seconds",
    ):
        table.add_row(key, "" if job.get(key) is None else str(job[key]))
    for name, value in (job.get("metrics") or {}).items():
        table.add_row(f"metrics.{name}", f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


@app.command()
def jobs(
    tenant: Annotated[str | None, typer.Option()] = None,
    status_filter: Annotated[str | None, typer.Option("--status")] = None,
    model_name: Annotated[str | None, typer.Option()] = None,
    page: Annotated[int, typer.Option()] = 1,
    page_size: Annotated[int, typer.Option()] = 20,
) -> None:
    """List jobs, newest first."""
    params = {
        "tenant_id": tenant,
        "status": status_filter,
        "model_name": model_name,
        "page": page,
        "page_size": page_size,
    }
    result = request(
        "GET", "/ai/training/jobs", params={k: v for k, v in params.items() if v is not None}
    )
    table = Table("job_id", "tenant", "model", "status", "priority", "progress", "mae", "created")
    for job in result["jobs"]:
        mae = (job.get("metrics") or {}).get("mae")
        table.add_row(
            job["job_id"],
            job["tenant_id"],
            job["model_name"],
            job["status"],
            str(job["priority"]),
            f"{job['progress']:.0%}",
            f"{mae:.3f}" if mae is not None else "",
            job["created_at"][:19],
        )
    console.print(table)
    console.print(f"page {result['page']}, {len(result['jobs'])} of {result['total']}")


@app.command()
def watch(job_id: str, interval: Annotated[float, typer.Option()] = 0.5) -> None:
    """Show a progress bar until the job ends; exits non-zero unless it completed."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(job_id[:8], total=1.0)
        while True:
            job = poll(f"/ai/training/jobs/{job_id}")
            progress.update(
                bar,
                completed=job["progress"],
                description=_describe(job),
            )
            if job["status"] in FINISHED:
                break
            time.sleep(interval)
    if job["status"] == "completed":
        console.print(f"completed: model {job['model_id']}, test MAE {job['metrics']['mae']:.3f}")
        return
    console.print(f"{job['status']}: {job.get('error_message') or ''}")
    raise typer.Exit(code=1)


def _describe(job: dict[str, Any]) -> str:
    """One status line; HPO jobs add their trial tallies and best value so far."""
    text = f"{job['job_id'][:8]} {job['status']} {job.get('stage') or ''}"
    metrics = job.get("metrics") or {}
    if "trials_completed" in metrics:
        best = metrics.get("best_value")
        text += (
            f" trials {metrics['trials_completed']} done, {metrics['trials_pruned']} pruned,"
            f" {metrics['trials_failed']} failed of {job['config']['n_trials']}"
            + (f", best {best:.3f}" if best is not None else "")
        )
    return text


@app.command()
def cancel(job_id: str) -> None:
    """Cancel a queued or running job."""
    result = request("DELETE", f"/ai/training/jobs/{job_id}")
    console.print(f"{result['job_id']} {result['status']}")


@app.command()
def retry(job_id: str) -> None:
    """Queue a failed or cancelled job again."""
    job = request("POST", f"/ai/training/jobs/{job_id}/retry")
    console.print(f"queued {job['job_id']} (retry of {job['retry_of']})")


@app.command()
def logs(job_id: str, tail: Annotated[int, typer.Option()] = 100) -> None:
    """Print a job's last log lines."""
    result = request("GET", f"/ai/training/jobs/{job_id}/logs", params={"tail": tail})
    for line in result["logs"]:
        stage = line["stage"] or ""
        typer.echo(f"{line['timestamp'][:23]} {line['level']:<7} {stage:<14} {line['message']}")


@app.command()
def stats() -> None:
    """Show running and queued jobs, and the CPUs they reserve."""
    result = request("GET", "/ai/training/stats")
    console.print(
        f"active {result['active_jobs']}, queued {result['queued_jobs']}; "
        f"CPUs reserved {result['cpus_reserved']} of {result['cluster_cpus']} "
        f"({result['utilization_percent']}%), the cluster up to {result['max_capacity']}"
    )


def main() -> None:
    app()
