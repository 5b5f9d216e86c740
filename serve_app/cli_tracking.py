"""``trainctl experiments`` and ``trainctl models``: tracking and registry in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from matplotlib.figure import Figure
from rich.table import Table

from serve_app.cli_http import console, request

experiments_app = typer.Typer(help="Experiments: list, show and compare runs.")
models_app = typer.Typer(help="Registered models: list, show and move aliases.")

HEADLINE_METRICS = ("mae", "rmse", "mape", "r2", "best_validation_l1")


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@experiments_app.command("list")
def experiments_list(
    tenant: Annotated[str | None, typer.Option()] = None,
    job: Annotated[str | None, typer.Option(help="Only this job's experiments.")] = None,
    model_name: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    order_by: Annotated[str, typer.Option(help="created_at or metric.<name>")] = "created_at",
    ascending: Annotated[bool, typer.Option("--asc", help="Smallest first.")] = False,
    page: Annotated[int, typer.Option()] = 1,
    page_size: Annotated[int, typer.Option()] = 20,
) -> None:
    """Experiments as a table, newest first or sorted by a final metric."""
    given = {"tenant_id": tenant, "job_id": job, "model_name": model_name, "status": status}
    params: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    params |= {"order_by": order_by, "order": "asc" if ascending else "desc"}
    params |= {"page": page, "page_size": page_size}
    result = request("GET", "/ai/training/experiments", params=params)
    table = Table("experiment", "name", "status", "job", *HEADLINE_METRICS, "created")
    for e in result["experiments"]:
        table.add_row(
            e["experiment_id"],
            e["name"],
            e["status"],
            e["job_id"] or "(purged)",
            *(_number(e["metrics"].get(m)) for m in HEADLINE_METRICS),
            e["created_at"][:19],
        )
    console.print(table)
    console.print(f"{len(result['experiments'])} of {result['total']} (page {result['page']})")


@experiments_app.command("show")
def experiments_show(experiment_id: str) -> None:
    """One experiment: status, lineage, parameters and final metrics."""
    e = request("GET", f"/ai/training/experiments/{experiment_id}")
    console.print(f"[bold]{e['name']}[/bold]  {e['experiment_id']}  {e['status']}")
    console.print(f"tenant {e['tenant_id']}  model {e['model_name']}  model_id {e['model_id']}")
    job = e["job"]
    if job:
        console.print(f"job {job['job_id']} ({job['status']}, feature set {job['feature_set']})")
    else:
        console.print(f"job {e['job_id'] or '(purged)'}")
    for title, values in (("parameter", e["params"]), ("metric", e["metrics"])):
        table = Table(title, "value")
        for name, value in values.items():
            table.add_row(name, _number(value))
        console.print(table)


@experiments_app.command("compare")
def experiments_compare(
    experiment_ids: Annotated[list[str], typer.Argument(help="2 to 20 experiment ids.")],
    metric: Annotated[str, typer.Option(help="The curve to align.")] = "validation_l1",
    plot: Annotated[
        Path | None, typer.Option(help="Draw the aligned curves into this PNG.")
    ] = None,
) -> None:
    """Parameters side by side (differences in yellow), final metrics (best in green)."""
    body = {"experiment_ids": experiment_ids, "metric": metric}
    result = request("POST", "/ai/training/experiments/compare", json=body)
    names = {e["experiment_id"]: e["name"] for e in result["experiments"]}
    ids = list(names)
    params = Table("parameter", *(names[i] for i in ids))
    for row in result["params"]:
        style = "yellow" if row["differs"] else None
        params.add_row(row["name"], *(_number(row["values"][i]) for i in ids), style=style)
    console.print(params)
    metrics = Table("metric", *(names[i] for i in ids))
    for row in result["metrics"]:
        cells = [
            f"[green]{_number(row['values'][i])}[/green]"
            if i in row["best"]
            else _number(row["values"][i])
            for i in ids
        ]
        metrics.add_row(f"{row['name']} ({row['goal'] or '-'})", *cells)
    console.print(metrics)
    if plot is not None:
        draw_curves(result["curve"], names, plot)
        console.print(f"curves written to {plot}")


def draw_curves(curve: dict[str, Any], names: dict[str, str], path: Path) -> None:
    """One line per experiment over the aligned steps, written as a PNG."""
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.subplots()
    for experiment_id, values in curve["values"].items():
        points = [(s, v) for s, v in zip(curve["steps"], values, strict=True) if v is not None]
        axes.plot([s for s, _ in points], [v for _, v in points], label=names[experiment_id])
    axes.set_xlabel("step")
    axes.set_ylabel(curve["metric"])
    axes.legend(fontsize="small")
    figure.savefig(path, format="png", dpi=100)


@models_app.command("list")
def models_list(
    tenant: Annotated[str | None, typer.Option()] = None,
    model_name: Annotated[str | None, typer.Option()] = None,
    page: Annotated[int, typer.Option()] = 1,
) -> None:
    """Registered versions, newest first, with their aliases."""
    given = {"tenant_id": tenant, "model_name": model_name}
    params: dict[str, Any] = {k: v for k, v in given.items() if v is not None} | {"page": page}
    result = request("GET", "/ai/models", params=params)
    table = Table("model_id", "type", "aliases", "mae", "job", "created")
    for m in result["models"]:
        table.add_row(
            m["model_id"],
            m["model_type"],
            ", ".join(m["aliases"]),
            _number(m["metrics"].get("mae")),
            m["job_id"],
            m["created_at"][:19],
        )
    console.print(table)


@models_app.command("alias")
def models_alias(
    tenant: str,
    model_name: str,
    alias: str,
    version: Annotated[str | None, typer.Argument(help="Omit with --delete.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
) -> None:
    """Point an alias at a version (or remove it with --delete)."""
    path = f"/ai/models/{tenant}/{model_name}/aliases/{alias}"
    if delete:
        request("DELETE", path)
        console.print(f"removed {alias}")
        return
    if version is None:
        raise typer.BadParameter("give a version, or --delete")
    model = request("PUT", path, json={"version": version})
    console.print(f"{alias} -> {model['model_id']}")
