"""How ``trainctl`` talks to the API (``TRAINING_API_URL``) and reports its errors."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

console = Console()
#: Seconds a call waits for an answer.
TIMEOUT_SECONDS = 60.0
#: How long a following loop waits out a service that is restarting, and how often it asks.
POLL_PATIENCE_SECONDS = 600.0
POLL_RETRY_SECONDS = 5.0
_NOT_JSON = object()


class ApiError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class ClientSettings(BaseSettings):
    """What trainctl reads of the environment: where the API is and the key it sends. Not
    the server's settings: their rules (auth on for a public host) are the server's, and a
    client on a server's machine must not fail by them."""

    model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore")

    api_url: str = "http://127.0.0.1:8000"
    api_key: str | None = None


def http_client() -> httpx.Client:
    """A client for ``TRAINING_API_URL`` sending ``TRAINING_API_KEY`` when it is set."""
    settings = ClientSettings()
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    return httpx.Client(base_url=settings.api_url, headers=headers, timeout=TIMEOUT_SECONDS)


def call(method: str, path: str, **kwargs: Any) -> Any:
    """The answer's JSON (None if empty).

    Raises:
        ApiError: no answer (status 0, or 503 for an answer that never came), an HTTP
            error, or an answer that is not the service's JSON.
    """
    with http_client() as client:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiError(
                0,
                f"no answer from {client.base_url} within {TIMEOUT_SECONDS:g}s; the request "
                "may still have been carried out: check before repeating it",
            ) from exc
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach {client.base_url}: {exc}") from exc
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = _NOT_JSON
    if response.status_code >= 400:
        detail = body.get("detail", body) if isinstance(body, dict) else body
        raise ApiError(response.status_code, response.text if detail is _NOT_JSON else detail)
    if body is _NOT_JSON:
        raise ApiError(
            response.status_code,
            f"the answer from {response.url} is not JSON: is TRAINING_API_URL the service?",
        )
    return body


def request(method: str, path: str, **kwargs: Any) -> Any:
    """``call``, printing an API error and exiting 1 on failure."""
    try:
        return call(method, path, **kwargs)
    except ApiError as exc:
        raise fail(exc) from exc


def poll(path: str, *, patience: float = POLL_PATIENCE_SECONDS, **kwargs: Any) -> Any:
    """``GET path`` for a loop that follows a job or a forecast: a 503 (the database or
    the orchestrator is restarting) or no answer is waited out, asking again every
    ``POLL_RETRY_SECONDS``, for up to ``patience`` seconds; then, or on any other error,
    as ``request``."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return call("GET", path, **kwargs)
        except ApiError as exc:
            if exc.status not in (0, 503) or time.monotonic() > deadline:
                raise fail(exc) from exc
            console.print(f"[yellow]waiting[/yellow] {exc}")
            time.sleep(POLL_RETRY_SECONDS)


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


#: ``--job-file``: a start-job body, read with ``json_file``.
JobFile = Annotated[
    Path | None,
    typer.Option(
        help="A start-job body (JSON) instead of the options above.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]


def json_file(path: Path, option: str) -> dict[str, Any]:
    """The JSON object in ``path``.

    Raises:
        typer.BadParameter: it is not one (naming ``option``).
    """
    try:
        found = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise typer.BadParameter(f"{path} is not a JSON file: {exc}", param_hint=option) from None
    if not isinstance(found, dict):
        raise typer.BadParameter(f"{path} holds no JSON object", param_hint=option)
    return found


def fail(exc: ApiError) -> typer.Exit:
    if isinstance(exc.detail, list) and all(isinstance(item, dict) for item in exc.detail):
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
