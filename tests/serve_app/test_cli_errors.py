"""trainctl's errors before anything runs: a database the key commands cannot use, a key
name its column cannot hold, a Serve config that is not one: each a message and exit
code 2, never a traceback (and never the database's password)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from serve_app.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql+asyncpg://u:secret@127.0.0.1:1/db", "database postgresql+asyncpg://u:***"),
        ("mysql://u:secret@127.0.0.1/db", "TRAINING_DATABASE_URL"),
    ],
    ids=["unreachable", "unsupported"],
)
def test_keys_on_a_database_they_cannot_use(
    monkeypatch: pytest.MonkeyPatch, url: str, said: str
) -> None:
    monkeypatch.setenv("TRAINING_DATABASE_URL", url)
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert "secret" not in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_key_name_longer_than_its_column_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAINING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/keys.db")
    result = runner.invoke(app, ["keys", "create", "--tenant", "t1", "--name", "n" * 129])
    assert result.exit_code == 2, result.output
    assert "at most 128 characters" in result.output
    assert not (tmp_path / "keys.db").exists(), "nothing was written"


@pytest.mark.parametrize(
    "text",
    ["applications: [{name: a, import_path: x:y}, {name: b, import_path: x:z}]", "a: [b"],
    ids=["two-applications", "not-yaml"],
)
def test_up_with_a_serve_config_that_is_not_one(tmp_path: Path, text: str) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(text)
    result = runner.invoke(app, ["up", "--serve-config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"serve config {config}" in result.output.replace("\n", "")
    assert "admin key" not in result.output


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["models", "predict", "m", "{missing}"], "does not exist"),
        (["schedules", "create", "s", "--cron", "0 2 * * *", "--job-file", "{missing}"], "exist"),
        (["schedules", "create", "s", "--cron", "0 2 * * *", "--job-file", "{bad}"], "not a JSON"),
        (["policies", "create", "--drift", "3", "--job-file", "{bad}"], "not a JSON"),
        (["experiments", "compare", "a", "b", "--plot", "{missing}/c.png"], "no directory"),
    ],
    ids=["predict-rows", "schedule-job-file", "schedule-not-json", "policy-not-json", "plot"],
)
def test_files_that_cannot_be_read_or_written_are_refused_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], said: str
) -> None:
    monkeypatch.setenv("TRAINING_API_URL", "http://127.0.0.1:1")  # nothing is asked of it
    monkeypatch.setenv("COLUMNS", "200")
    bad = tmp_path / "job.json"
    bad.write_text("{not json")
    paths = {"missing": str(tmp_path / "missing"), "bad": str(bad)}
    result = runner.invoke(app, [part.format(**paths) for part in command])
    assert result.exit_code == 2, result.output
    assert said in " ".join(result.output.split())
    assert "cannot reach" not in result.output


def test_keys_use_the_database_trainctl_up_is_given_and_name_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TRAINING_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # the list's table whole
    monkeypatch.chdir(tmp_path)
    service = tmp_path / "service"
    created = runner.invoke(app, ["keys", "--data-dir", str(service), "create", "--tenant", "t1"])
    assert created.exit_code == 0, created.output
    url = f"sqlite+aiosqlite:///{service}/training.db"
    assert f"database {url}" in created.output.replace("\n", "")
    key_id = created.output.strip().splitlines()[-1].split("_")[1]
    assert not (tmp_path / "data").exists(), "not the default directory's database"

    monkeypatch.setenv("TRAINING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/elsewhere.db")
    listed = runner.invoke(app, ["keys", "--database-url", url, "list"])
    assert listed.exit_code == 0, listed.output
    assert key_id in listed.output
    assert not (tmp_path / "elsewhere.db").exists(), "the option wins over the environment"


def test_trainctl_on_a_servers_machine_is_not_held_to_the_servers_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRAINING_HOST", "0.0.0.0")  # the server's: auth must be on for it
    monkeypatch.setenv("TRAINING_API_URL", "http://127.0.0.1:9")  # nothing listens there
    result = runner.invoke(app, ["jobs"])
    assert result.exit_code == 1, result.output
    assert "cannot reach http://127.0.0.1:9" in result.output


def test_up_interrupted_while_starting_stops_what_started(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ctrl-C before the service is ready (migrations, Serve, the orchestrator's start):
    exit 130 with no traceback, having stopped what started (on a cluster it outlives the
    process). The start itself is faked: this is the command's wiring only."""
    import serve_app.service

    abandoned: list[object] = []

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(serve_app.service, "bootstrap", interrupted)
    monkeypatch.setattr(serve_app.service, "abandon", abandoned.append)
    result = runner.invoke(app, ["up", "--data-dir", str(tmp_path)])
    assert result.exit_code == 130, result.output
    assert "Interrupted while starting" in result.output
    assert len(abandoned) == 1
    assert "Traceback" not in result.output
