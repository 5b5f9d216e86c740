"""``trainctl features``: import a feature set, append rows to one, list them, over HTTP."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from serve_app.cli_http import console, request

features_app = typer.Typer(
    help="Feature sets: import, append rows, label anomaly windows and list."
)


@features_app.command("import")
def features_import(
    name: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    timestamp_column: Annotated[str, typer.Option()],
    target_column: Annotated[str, typer.Option()],
    series_column: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Upload a CSV or Parquet file as a feature set."""
    params = {"timestamp_column": timestamp_column, "target_column": target_column}
    if series_column:
        params["series_column"] = series_column
    with file.open("rb") as rows:  # streamed, with its length: never whole in memory
        result = request("PUT", f"/ai/training/feature-sets/{name}", params=params, content=rows)
    console.print(
        f"stored {result['name']}: {result['rows']} rows, {result['start']} .. {result['end']}"
    )


@features_app.command("append")
def features_append(
    name: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    replace: Annotated[
        bool, typer.Option(help="Replace the rows the set has already (else: refused).")
    ] = False,
) -> None:
    """Append a CSV or Parquet file's rows to a feature set, as a new version."""
    params = {"on_conflict": "replace" if replace else "refuse"}
    with file.open("rb") as rows:
        result = request(
            "POST", f"/ai/training/feature-sets/{name}/rows", params=params, content=rows
        )
    console.print(
        f"appended {result['appended_rows']} rows to {result['name']} (replaced "
        f"{result['replaced_rows']}): version {result['version']}, {result['rows']} rows, "
        f"{result['start']} .. {result['end']}"
    )


@features_app.command("list")
def features_list() -> None:
    """List the stored feature sets."""
    result = request("GET", "/ai/training/feature-sets")
    table = Table("name", "target", "rows", "start", "end", "covariates")
    for fs in result["feature_sets"]:
        table.add_row(
            fs["name"],
            fs["target_column"],
            str(fs["rows"]),
            fs["start"][:19],
            fs["end"][:19],
            ", ".join(fs["covariates"]),
        )
    console.print(table)


@features_app.command("windows")
def features_windows(
    name: str,
    file: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="A CSV of start,end[,series]: replace the set's labelled windows with it.",
        ),
    ] = None,
) -> None:
    """Show a feature set's labelled anomaly windows, or replace them from a CSV."""
    path = f"/ai/training/feature-sets/{name}/anomaly-windows"
    if file is None:
        result = request("GET", path)
    else:
        with file.open(newline="") as rows:
            windows = [
                {key: value for key, value in row.items() if value} for row in csv.DictReader(rows)
            ]
        result = request("PUT", path, json={"windows": windows})
    table = Table("start", "end", "series")
    for window in result["windows"]:
        table.add_row(window["start"], window["end"], window["series"] or "")
    console.print(table)
