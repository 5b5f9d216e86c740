"""How ``trainctl`` talks to the API (``TRAINING_API_URL``) and reports its errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console

from serve_app.settings import ApiSettings

console = Console()


class ApiError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def http_client() -> httpx.Client:
    """A client for ``TRAINING_API_URL`` sending ``TRAINING_API_KEY`` when it is set."""
    settings = ApiSettings()
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    return httpx.Client(base_url=settings.api_url, headers=headers, timeout=60.0)


def call(method: str, path: str, **kwargs: Any) -> Any:
    with http_client() as client:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach {client.base_url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text
        raise ApiError(response.status_code, detail)
    return response.json() if response.content else None


def request(method: str, path: str, **kwargs: Any) -> Any:
    """``call``, printing an API error and exiting 1 on failure."""
    try:
        return call(method, path, **kwargs)
    except ApiError as exc:
        raise fail(exc) from exc


def writable_file(out: Path | None) -> Path | None:
    """An output file the command can write, checked before it sends anything: a forecast
    is not run to be lost at the end for a mistyped directory."""
    if out is None:
        return None
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a directory; name a file")
    folder = out.parent
    if not folder.is_dir():
        raise typer.BadParameter(f"there is no directory {folder}")
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise typer.BadParameter(f"{out} cannot be written")
    return out


def fail(exc: ApiError) -> typer.Exit:
    if isinstance(exc.detail, list):
        for item in exc.detail:
            where = ".".join(str(part) for part in item.get("loc", [])[1:])
            console.print(f"[red]error[/red] {where}: {item.get('msg')}")
    else:
        console.print(f"[red]error[/red] {exc}")
    return typer.Exit(code=1)


def add_switches(app: typer.Typer, api: str) -> None:
    """``enable ID``, ``disable ID`` and ``delete ID`` on the resources at ``api``."""

    def enable(resource_id: str) -> None:
        request("PATCH", f"{api}/{resource_id}", json={"enabled": True})
        console.print(f"enabled {resource_id}")

    def disable(resource_id: str) -> None:
        request("PATCH", f"{api}/{resource_id}", json={"enabled": False})
        console.print(f"disabled {resource_id}")

    def delete(resource_id: str) -> None:
        request("DELETE", f"{api}/{resource_id}")
        console.print(f"deleted {resource_id}")

    for command in (enable, disable, delete):
        app.command(command.__name__)(command)
