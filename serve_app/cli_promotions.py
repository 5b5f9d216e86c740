"""``trainctl models promotions`` and ``trainctl models rollback``: the decisions on a
model's ``champion`` alias, and moving it back."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from serve_app.cli_http import console, request


def _score(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


def promotions(
    model_name: str,
    tenant: Annotated[str, typer.Option()] = "default",
    page: Annotated[int, typer.Option()] = 1,
    page_size: Annotated[int, typer.Option()] = 20,
    reasons: Annotated[bool, typer.Option("--reasons", help="Print each reason too.")] = False,
) -> None:
    """The decisions on a model's champion, newest first: both models' scores on the same
    rows, how sure the paired test over the days is, and the decision."""
    params = {"page": page, "page_size": page_size}
    result = request("GET", f"/ai/models/{tenant}/{model_name}/promotions", params=params)
    table = Table(
        "decided", "decision", "challenger", "champion", "metric", "challenger", "champion",
        "confidence", "window",
    )  # fmt: skip
    for p in result["promotions"]:
        window = f"{(p['window_start'] or '')[:10]} .. {(p['window_end'] or '')[:10]}"
        table.add_row(
            p["decided_at"][:19],
            p["decision"],
            p["challenger_id"].rsplit(":", 1)[-1],
            (p["champion_id"] or "-").rsplit(":", 1)[-1],
            p["metric"] or "-",
            _score(p["challenger_score"]),
            _score(p["champion_score"]),
            _score(p["confidence"]),
            window if p["window_start"] else "-",
        )
    console.print(table)
    if reasons:
        for p in result["promotions"]:
            console.print(f"{p['decided_at'][:19]} {p['decision']}: {p['reason']}")
    console.print(f"{len(result['promotions'])} of {result['total']} (page {result['page']})")


def rollback(
    model_name: str,
    tenant: Annotated[str, typer.Option()] = "default",
    reason: Annotated[str | None, typer.Option(help="Stored with the rollback.")] = None,
) -> None:
    """Point the champion back at the version the latest promotion replaced."""
    body = {"reason": reason} if reason else None
    done = request("POST", f"/ai/models/{tenant}/{model_name}/rollback", json=body)
    console.print(f"champion -> {done['champion_id']} (rolled back {done['challenger_id']})")
