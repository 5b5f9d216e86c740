"""Responses shared by routers: a table's rows as a CSV download (``Accept: text/csv``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

CSV = "text/csv"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {}}, "description": "The resource, or all its rows as CSV."}
}


def wants_csv(request: Request) -> bool:
    return CSV in request.headers.get("accept", "")


def csv_download(chunks: Iterator[str], filename: str) -> StreamingResponse:
    """Every row, streamed as the chunks come, saved by a browser as ``filename``."""
    return StreamingResponse(
        chunks,
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
