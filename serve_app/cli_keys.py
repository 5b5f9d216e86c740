"""``trainctl keys``: issue, list and revoke API keys, straight in the database.

Key management is the operator's, like ``trainctl up``: it reads the service's database
(``--database-url`` or ``--data-dir`` as given to ``up``, else ``TRAINING_DATABASE_URL``)
and needs no running service, so the first admin key can be made before any exists. Every
command says which database it used: a key written where the service does not look is
found at once, not at its first 401.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.table import Table
from sqlalchemy.exc import DBAPIError

from db.database import Database, UnusableDatabaseUrl
from db.keys import ApiKeyStore
from db.settings import DatabaseSettings
from domain.auth import Role
from domain.clock import utcnow
from domain.errors import KeyNotFound, ServiceUnavailable
from domain.names import is_valid_name
from domain.redaction import redact, redact_url, secrets_of
from serve_app.cli_http import console

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.")

T = TypeVar("T")
#: A key's name, as its column holds it.
MAX_NAME_CHARS = 128
DURATION = re.compile(r"^(\d+)([dhm])$")
UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h`` or ``90m``."""
    match = DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 30d, 12h or 90m")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


@keys_app.callback()
def keys_database(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(help="The service's SQLAlchemy URL; default: TRAINING_DATABASE_URL."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="The service's data directory, whose SQLite it uses without a URL."),
    ] = None,
) -> None:
    """The database the key commands use, as ``trainctl up`` is given it."""
    given = {"database_url": database_url, "data_dir": data_dir}
    ctx.obj = {field: value for field, value in given.items() if value is not None}


def _with_keys(ctx: typer.Context, action: Callable[[ApiKeyStore], Awaitable[T]]) -> T:
    """``action`` on the keys of the service's database (migrated first), which it names;
    a database that cannot be used is an error that says why, never a traceback."""
    try:
        url = DatabaseSettings(**(ctx.obj or {})).url
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]error[/red] TRAINING_DATABASE_URL: {error['msg']}")
        raise typer.Exit(code=2) from None
    console.print(f"database {redact_url(url)}")

    async def run() -> T:
        database = Database.from_url(url)
        try:
            await database.migrate()
            return await action(ApiKeyStore(database))
        finally:
            await database.close()

    try:
        return asyncio.run(run())
    except (ServiceUnavailable, UnusableDatabaseUrl, DBAPIError) as exc:
        reason = redact(str(exc), secrets_of(url))
        console.print(f"[red]error[/red] database {redact_url(url)}: {reason}")
        raise typer.Exit(code=2) from None


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    role: Annotated[Role, typer.Option(help="viewer, member or admin.")] = Role.MEMBER,
    expires_in: Annotated[str | None, typer.Option(help="e.g. 30d, 12h, 90m.")] = None,
    name: Annotated[
        str | None, typer.Option(help="A note to recognise the key by (128 characters).")
    ] = None,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    if not is_valid_name(tenant):
        raise typer.BadParameter(f"invalid tenant id {tenant!r}")
    if name is not None and len(name) > MAX_NAME_CHARS:
        raise typer.BadParameter(f"a key's name holds at most {MAX_NAME_CHARS} characters")
    now = utcnow()
    expires_at = now + parse_duration(expires_in) if expires_in else None
    issued = _with_keys(ctx, lambda keys: keys.create(tenant, role, now, expires_at, name))
    console.print(f"key {issued.record.key_id} for tenant {tenant} ({role.value})")
    console.print("Store it now; it cannot be shown again:")
    print(issued.token)


@keys_app.command("list")
def keys_list(ctx: typer.Context, tenant: Annotated[str | None, typer.Option()] = None) -> None:
    """Keys with their tenant, role, last use, expiry and revocation (never the secret)."""
    records = _with_keys(ctx, lambda keys: keys.search(tenant))
    table = Table("key", "tenant", "role", "name", "created", "last used", "expires", "revoked")
    for r in records:
        table.add_row(
            r.key_id,
            r.tenant_id,
            r.role.value,
            r.name or "",
            _when(r.created_at),
            _when(r.last_used_at),
            _when(r.expires_at),
            _when(r.revoked_at),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    try:
        _with_keys(ctx, lambda keys: keys.revoke(key_id, utcnow()))
    except KeyNotFound as exc:
        console.print(f"[red]error[/red] {exc.message}")
        raise typer.Exit(code=1) from exc
    console.print(f"revoked {key_id}")
