"""``trainctl detect``: score a window of a feature set with an anomaly model (with
``--wait``, a progress bar, then its events); ``trainctl detections list/show/events``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from serve_app.cli_forecasts import SHOWN_ROWS, download, follow
from serve_app.cli_http import console, request, writable_file

detections_app = typer.Typer(help="Detections: anomaly models' scores over a window of a set.")
PATH = "/ai/models/detections"


def detect(
    model_id: Annotated[
        str, typer.Argument(help="A model id, or with --alias the model's tenant/name.")
    ],
    alias: Annotated[
        str | None, typer.Option(help="Detect with the version this alias points at.")
    ] = None,
    feature_set: Annotated[
        str | None, typer.Option(help="The set to score (default: the model's own).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="ISO start, inclusive (default: the set's).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="ISO end, exclusive (default: the set's).")
    ] = None,
    series: Annotated[
        list[str] | None, typer.Option(help="A series to score (repeat; default: every series).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow it to the end, then show its events.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between status checks.")] = 0.5,
) -> None:
    """Score a window of a feature set's series with an anomaly model, in the background."""
    body: dict[str, Any] = {
        key: value
        for key, value in (
            ("feature_set", feature_set),
            ("start", start),
            ("end", end),
            ("series", series or None),
        )
        if value is not None
    }
    target = f"{model_id}@{alias}" if alias else model_id
    started = request("POST", f"/ai/models/{target}/detections", json=body)
    detection_id = started["detection_id"]
    if not wait:
        console.print(f"{started['status']}: detection {detection_id}")
        return
    result = follow(f"{PATH}/{detection_id}", "detection", detection_id, interval)["detection"]
    if result["status"] != "completed":
        console.print(f"[red]failed[/red]: {result.get('error') or ''}")
        raise typer.Exit(code=1)
    console.print(
        f"completed: detection {detection_id}, {result['rows']} rows, {result['events']} events"
    )
    _print_events(request("GET", f"{PATH}/{detection_id}/events"))


@detections_app.command("list")
def list_detections(
    model_id: Annotated[str | None, typer.Option(help="Only this model's detections.")] = None,
    status: Annotated[
        str | None, typer.Option(help="queued, running, completed or failed.")
    ] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=100)] = 20,
) -> None:
    """Detections, newest first."""
    params: dict[str, Any] = {"page": page, "page_size": page_size}
    params.update({k: v for k, v in (("model_id", model_id), ("status", status)) if v})
    found = request("GET", PATH, params=params)
    table = Table("detection_id", "model_id", "feature_set", "start", "end", "status", "events")
    for item in found["detections"]:
        events = item["events"]
        table.add_row(
            item["detection_id"],
            item["model_id"],
            item["feature_set"],
            item["start"] or "-",
            item["end"] or "-",
            item["status"],
            "-" if events is None else str(events),
        )
    console.print(table)
    console.print(f"{len(found['detections'])} of {found['total']} (page {found['page']})")


@detections_app.command()
def show(
    detection_id: str,
    out: Annotated[
        Path | None,
        typer.Option(help="Write every row to this CSV file.", callback=writable_file),
    ] = None,
    series: Annotated[
        str | None, typer.Option(help="Show this series' first rows (or write its rows).")
    ] = None,
) -> None:
    """A detection's status and its first rows (or every row into a CSV file)."""
    params = {"page_size": SHOWN_ROWS, "series": series}
    page = request("GET", f"{PATH}/{detection_id}", params=_given(params))
    state = page["detection"]
    console.print(
        f"{state['status']}: detection {detection_id} of {state['model_id']} on "
        f"{state['feature_set']} from {state['start']} to {state['end']}"
        + (f", {state['rows']} rows, {state['events']} events" if state["rows"] is not None else "")
    )
    if state["error"]:
        console.print(f"[red]error[/red]: {state['error']}")
    if out is not None:
        download(f"{PATH}/{detection_id}", out, series)
        console.print(f"wrote {out}")
        return
    table = Table("series", "timestamp", "actual", "predicted", "score", "anomaly")
    for row in page["rows"]:
        score = row["anomaly_score"]
        table.add_row(
            row["series"] or "-",
            row["timestamp"],
            f"{row['actual']:.4g}",
            f"{row['predicted']:.4g}",
            "-" if score is None else f"{score:.2f}",
            "yes" if row["anomaly"] else "",
        )
    console.print(table)


@detections_app.command()
def events(
    detection_id: str,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    series: Annotated[str | None, typer.Option(help="Only this series' events.")] = None,
) -> None:
    """A detection's events, by start."""
    params = {"page": page, "page_size": page_size, "series": series}
    _print_events(request("GET", f"{PATH}/{detection_id}/events", params=_given(params)))


def _given(params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


def _print_events(found: dict[str, Any]) -> None:
    table = Table("series", "start", "end", "peak_at", "peak_score", "severity", "rows")
    for event in found["events"]:
        table.add_row(
            event["series"] or "-",
            event["start"],
            event["end"],
            event["peak_at"],
            f"{event['peak_score']:.2f}",
            event["severity"],
            str(event["rows"]),
        )
    console.print(table)
    console.print(f"{len(found['events'])} of {found['total']} events (page {found['page']})")
