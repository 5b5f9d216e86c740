"""``trainctl experiments`` and ``trainctl models``: tracking and registry in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from matplotlib.figure import Figure
from rich.table import Table

from serve_app.cli_http import console, request, writable_file

experiments_app = typer.Typer(help="Experiments: list, show and compare runs.")
models_app = typer.Typer(
    help="Registered models: list, show, per-series metrics, predict and move aliases."
)

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
        Path | None,
        typer.Option(help="Draw the aligned curves into this PNG.", callback=writable_file),
    ] = None,
) -> None:
    """Parameters side by side (differences in yellow), final metrics (best in green), and
    for HPO trials which won over the validation windows against the first one given."""
    body = {"experiment_ids": experiment_ids, "metric": metric}
    result = request("POST", "/ai/training/experiments/compare", json=body)
    names = distinct_names(result["experiments"])
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
    if result["windows"] is not None:
        console.print(window_table(result["windows"], names))
    if plot is not None:
        draw_curves(result["curve"], names, plot)
        console.print(f"curves written to {plot}")


def distinct_names(experiments: list[dict[str, Any]]) -> dict[str, str]:
    """Each experiment's name by id, with its id's first 8 characters where another has the
    same name (every job of a model has an ``attempt 1``, every search a ``trial 0``)."""
    counts: dict[str, int] = {}
    for e in experiments:
        counts[e["name"]] = counts.get(e["name"], 0) + 1
    return {
        e["experiment_id"]: e["name"]
        if counts[e["name"]] == 1
        else f"{e['name']} {e['experiment_id'][:8]}"
        for e in experiments
    }


def window_table(windows: dict[str, Any], names: dict[str, str]) -> Table:
    """Each experiment against the baseline over the validation windows; the winner bold."""
    table = Table(
        "experiment",
        f"gain over {names[windows['baseline']]}",
        "margin",
        "won",
        title=f"{windows['metric']} over the validation windows",
        caption=f"{names[windows['winner']]} won",
    )
    for row in windows["rows"]:
        gain, margin = row["gain"], row["margin"]
        table.add_row(
            names[row["experiment_id"]],
            "not paired" if gain is None else f"{100 * gain:+.2f} %",
            "-" if margin is None else f"{100 * margin:.2f} %",
            "yes" if row["won"] else "no",
            style="bold" if row["experiment_id"] == windows["winner"] else None,
        )
    return table


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


@models_app.command("show")
def models_show(
    model_id: str,
    top: Annotated[int, typer.Option(help="Features to list by importance.")] = 15,
) -> None:
    """One version: its metrics and its features by importance (gain)."""
    model = request("GET", f"/ai/models/{model_id}")
    console.print(f"{model['model_id']}  ({model['model_type']}, job {model['job_id']})")
    metrics = Table("metric", "value")
    for name, value in sorted(model["metrics"].items()):
        metrics.add_row(name, _number(value))
    console.print(metrics)
    importance = model.get("feature_importance") or {}
    total = sum(importance.values()) or 1.0
    ranked = Table("feature", "gain", "share")
    for name, gain in sorted(importance.items(), key=lambda kv: -kv[1])[:top]:
        ranked.add_row(name, _number(gain), f"{100 * gain / total:.1f} %")
    console.print(ranked)


@models_app.command("series-metrics")
def models_series_metrics(
    model_id: str,
    order_by: Annotated[str, typer.Option(help="series, rows, mae, rmse, mase, coverage_80")] = (
        "mase"
    ),
    asc: Annotated[bool, typer.Option("--asc", help="Best first.")] = False,
    page: Annotated[int, typer.Option()] = 1,
    page_size: Annotated[int, typer.Option()] = 20,
) -> None:
    """Per-series test accuracy of a multi-series model, worst first by default."""
    params = {
        "order_by": order_by,
        "order": "asc" if asc else "desc",
        "page": page,
        "page_size": page_size,
    }
    result = request("GET", f"/ai/models/{model_id}/series-metrics", params=params)
    levels = sorted({level for row in result["series"] for level in row["coverage"]})
    table = Table("series", "rows", "mae", "rmse", "mase", *[f"coverage {lv} %" for lv in levels])
    for row in result["series"]:
        table.add_row(
            row["series"],
            str(row["rows"]),
            _number(row["mae"]),
            _number(row["rmse"]),
            _number(row["mase"]),
            *[_number(row["coverage"].get(level)) for level in levels],
        )
    console.print(table)
    console.print(f"page {result['page']}, {result['total']} series")


@models_app.command("predict")
def models_predict(
    model_id: str,
    rows: Annotated[
        Path,
        typer.Argument(
            help="CSV of raw feature-set rows (history + future).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    explain: Annotated[bool, typer.Option(help="Each feature's contribution.")] = False,
    last: Annotated[int, typer.Option(help="Show the last N predictions.")] = 24,
) -> None:
    """Forecast (with quantiles) from a CSV of feature-set rows; empty targets are forecast."""
    records = _rows_as_written(rows)
    result = request(
        "POST", f"/ai/models/{model_id}/predict", json={"rows": records, "explain": explain}
    )
    predictions = result["predictions"][-last:]
    keys = sorted({k for p in predictions for k in p.get("quantiles") or {}}, key=float)
    table = Table("timestamp", "series", "actual", "predicted", *[f"q{k}" for k in keys])
    if explain:
        table.add_column("top contributions")
    for p in predictions:
        cells = [
            p["timestamp"][:19],
            p["series"] or "",
            _number(p["actual"]),
            _number(p["predicted"]),
            *[_number((p.get("quantiles") or {}).get(k)) for k in keys],
        ]
        if explain and p.get("explanation"):
            contributions = p["explanation"]["contributions"]
            strongest = sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:3]
            cells.append(", ".join(f"{name} {value:+.3g}" for name, value in strongest))
        table.add_row(*cells)
    console.print(table)


def _rows_as_written(path: Path) -> list[dict[str, str | None]]:
    """The CSV's rows with every value as written (series ``007`` stays ``007``; the
    service reads numbers and times itself), an empty cell as null."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not a CSV of rows: {exc}") from None
    return [
        {str(column): value or None for column, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


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
