"""``trainctl forecast``: a batch forecast with a progress bar, then its rows or a CSV file;
``trainctl forecasts``: the list."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from serve_app.cli_http import ApiError, console, fail, http_client, poll, request, writable_file

#: Rows printed when no --out file is given.
SHOWN_ROWS = 20


def forecast(
    model_id: Annotated[
        str, typer.Argument(help="A model id, or tenant/model@alias (e.g. t/load@champion).")
    ],
    feature_set: Annotated[str, typer.Option(help="The history to forecast from.")],
    horizon: Annotated[int, typer.Option(help="Steps ahead, at most the model's horizon.")],
    series: Annotated[
        str | None, typer.Option(help="Comma-separated series (default: every series).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every row to this CSV file.", callback=writable_file),
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between status checks.")] = 0.5,
) -> None:
    """Forecast the next steps of a feature set's series; a progress bar until it ends."""
    body: dict[str, Any] = {"feature_set": feature_set, "horizon": horizon}
    if series:
        body["series"] = [s.strip() for s in series.split(",") if s.strip()]
    started = request("POST", f"/ai/models/{model_id}/forecasts", json=body)
    forecast_id = started["forecast_id"]
    page = follow(f"/ai/models/forecasts/{forecast_id}", "forecast", forecast_id, interval)
    result = page["forecast"]
    if result["status"] != "completed":
        console.print(f"[red]failed[/red]: {result.get('error') or ''}")
        raise typer.Exit(code=1)
    console.print(f"completed: forecast {forecast_id}, {result['rows']} rows")
    if out is not None:
        download(f"/ai/models/forecasts/{forecast_id}", out)
        console.print(f"wrote {out}")
        return
    table = Table("series", "timestamp", "predicted", "quantiles")
    for row in page["predictions"]:
        quantiles = row.get("quantiles") or {}
        shown = " ".join(f"{k}:{v:.4g}" for k, v in quantiles.items())
        table.add_row(row["series"] or "-", row["timestamp"], f"{row['predicted']:.4g}", shown)
    console.print(table)
    if result["rows"] > len(page["predictions"]):
        console.print(f"(first {len(page['predictions'])} rows; --out FILE writes them all)")


def forecasts(
    model_id: Annotated[str | None, typer.Option(help="Only this model's forecasts.")] = None,
    status: Annotated[
        str | None, typer.Option(help="queued, running, completed or failed.")
    ] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=100)] = 20,
) -> None:
    """Batch forecasts, newest first."""
    params: dict[str, Any] = {"page": page, "page_size": page_size}
    if model_id:
        params["model_id"] = model_id
    if status:
        params["status"] = status
    found = request("GET", "/ai/models/forecasts", params=params)
    table = Table("forecast_id", "model_id", "feature_set", "horizon", "status", "rows", "created")
    for item in found["forecasts"]:
        table.add_row(
            item["forecast_id"],
            item["model_id"],
            item["feature_set"],
            str(item["horizon"]),
            item["status"],
            str(item["rows"] if item["rows"] is not None else "-"),
            item["created_at"],
        )
    console.print(table)
    console.print(f"{len(found['forecasts'])} of {found['total']} (page {found['page']})")


def follow(path: str, key: str, label: str, interval: float) -> dict[str, Any]:
    """GET ``path`` every ``interval`` seconds, a progress bar of its ``key`` (a forecast or
    a detection), until that has finished; its last page."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(label[:8], total=1.0)
        while True:
            page: dict[str, Any] = poll(path, params={"page_size": SHOWN_ROWS})
            state = page[key]
            progress.update(
                bar, completed=state["progress"], description=f"{label[:8]} {state['status']}"
            )
            if state["status"] in ("completed", "failed"):
                return page
            time.sleep(interval)


def download(path: str, out: Path, series: str | None = None) -> None:
    """Stream the CSV of the rows at ``path`` (of one ``series``, if named) into ``out``."""
    params = {"series": series} if series is not None else None
    headers = {"Accept": "text/csv"}
    with http_client() as client:
        try:
            with client.stream("GET", path, params=params, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise fail(ApiError(response.status_code, response.text))
                with out.open("wb") as file:
                    for chunk in response.iter_bytes():
                        file.write(chunk)
        except httpx.TransportError as exc:
            raise fail(ApiError(0, f"cannot reach {client.base_url}: {exc}")) from exc
        except OSError as exc:
            console.print(f"[red]error[/red] cannot write {out}: {exc.strerror or exc}")
            raise typer.Exit(code=1) from exc
