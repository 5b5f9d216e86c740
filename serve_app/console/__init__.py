"""The web console: static pages at ``/ui`` that use the JSON API from the browser.

Plain ES modules and uPlot (vendored under ``static/vendor``): no build step, no second
server. The API key, when auth is on, is typed into the page and kept in the tab's
session storage; the pages themselves are public, the data behind them is not.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
PATH = "/ui"


def mount_console(app: FastAPI) -> None:
    app.mount(PATH, StaticFiles(directory=STATIC_DIR, html=True), name="console")

    @app.get(PATH, include_in_schema=False)
    async def _console_root() -> RedirectResponse:
        return RedirectResponse(f"{PATH}/")
