"""The database URL comes from a variable or a file (a Kubernetes Secret mounted as a
volume), not both; its password never shows in a repr, a validation error, an error or a
log line, and ``trainctl up`` names an unreachable database without it."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import text
from typer.testing import CliRunner

from db.database import Database, UnusableDatabaseUrl
from db.settings import DatabaseSettings
from domain.errors import ServiceUnavailable
from serve_app.cli import app
from serve_app.service import api_config, service_config, settings_of
from tests.network import free_port

#: A password with an encoded '@': its decoded form, and the pieces around the '@', must
#: not show either.
PASSWORD = "Sup3rSecret%40Pa55"
NEVER_SHOWN = (PASSWORD, "Sup3rSecret@Pa55", "Sup3rSecret")


def url(port: int = 5432, password: str = PASSWORD) -> str:
    return f"postgresql+asyncpg://training:{password}@127.0.0.1:{port}/training"


def assert_hidden(shown: str) -> None:
    for secret in NEVER_SHOWN:
        assert secret not in shown, shown


@pytest.fixture(autouse=True)
def _no_database_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAINING_DATABASE_URL", raising=False)
    monkeypatch.delenv("TRAINING_DATABASE_URL_FILE", raising=False)


def test_the_url_comes_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "url"
    secret.write_text(f"  {url()}\n")
    monkeypatch.setenv("TRAINING_DATABASE_URL_FILE", str(secret))
    assert DatabaseSettings().url == url()
    config = service_config({"data_dir": tmp_path})
    assert config.database_url == url()
    # Serve's builder gets the URL as resolved, beside the variable naming the file.
    assert service_config(settings_of(config)) == config


@pytest.mark.parametrize(
    ("content", "variable", "message"),
    [
        (url(), url(), "set TRAINING_DATABASE_URL or TRAINING_DATABASE_URL_FILE, not both"),
        ("\n", None, "TRAINING_DATABASE_URL_FILE .* is empty"),
        (None, None, "TRAINING_DATABASE_URL_FILE .* cannot be read: No such file"),
        (url().replace("postgresql+asyncpg", "mysql"), None, "got 'mysql'"),
        (url().removeprefix("postgresql+asyncpg://"), None, "it has no scheme"),
    ],
    ids=["both", "empty", "missing", "other-driver", "no-scheme"],
)
def test_an_unusable_url_refuses_to_start_without_showing_it(
    content: str | None,
    variable: str | None,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = tmp_path / "url"
    if content is not None:
        secret.write_text(content)
    monkeypatch.setenv("TRAINING_DATABASE_URL_FILE", str(secret))
    if variable is not None:
        monkeypatch.setenv("TRAINING_DATABASE_URL", variable)
    with pytest.raises(ValidationError, match=message) as refused:
        DatabaseSettings()
    assert_hidden(str(refused.value))
    result = CliRunner().invoke(app, ["up", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert_hidden(result.output)


def test_no_repr_or_validation_error_shows_the_password(tmp_path: Path) -> None:
    settings = DatabaseSettings(database_url=url())
    config = service_config({"database_url": url(), "data_dir": tmp_path})
    for shown in (repr(settings), str(settings), repr(config), repr(api_config(config))):
        assert_hidden(shown)
    # Another setting refused: its error quotes its own input, never the URL.
    with pytest.raises(ValidationError, match="refusing to serve") as refused:
        service_config({"database_url": url(), "host": "0.0.0.0", "data_dir": tmp_path})
    assert_hidden(str(refused.value))
    with pytest.raises(ValidationError) as refused:
        DatabaseSettings(database_url=url().replace("postgresql+asyncpg", "mysql"))
    assert_hidden(str(refused.value))


async def test_a_failing_connection_never_shows_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    database = Database.from_url(url(port=free_port()))  # nothing listens there
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ServiceUnavailable, match="database unavailable") as failed:
        async with database.transaction() as session:
            await session.execute(text("select 1"))
    with pytest.raises(ServiceUnavailable) as migrating:
        await database.migrate()
    await database.close()
    with pytest.raises(UnusableDatabaseUrl, match=r"training:\*\*\*@") as unusable:
        Database.from_url(url(port=54321).replace("54321", "54x21"))
    for error in (failed.value, migrating.value, unusable.value):
        assert_hidden("".join(traceback.format_exception(error)))
    assert_hidden(repr(database.engine) + caplog.text)


def test_trainctl_up_names_an_unreachable_database_without_its_password(
    tmp_path: Path,
) -> None:
    port = free_port()
    result = CliRunner().invoke(
        app, ["up", "--database-url", url(port=port), "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert f"error database postgresql+asyncpg://training:***@127.0.0.1:{port}/training" in line
    assert "database unavailable" in line
    assert_hidden(result.output)
