"""The two clients against the deployed service: ``trainctl`` over HTTP, and the actor client."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
from ray.exceptions import RayError
from typer.testing import CliRunner

from actors.client import OrchestratorClient, TrainingClient
from actors.submission import JobSubmission
from db.records import JobFilters, JobRecord
from domain.errors import IllegalTransition, JobNotFound, ServiceUnavailable
from domain.jobs import JobStatus, ModelType
from pipeline.config import TrainingConfig
from pipeline.store.demo import load_series
from serve_app.cli import app
from tests.serve_app.conftest import QUICK, SLOW, Deployed
from tests.serve_app.test_forecasting import meters

runner = CliRunner()
#: ``conftest.QUICK`` as trainctl options: one booster of 30 rounds, no quantiles.
QUICK_OPTIONS = [
    "--param",
    "n_estimators=30",
    "--param",
    "objective=regression",
    "--quantiles",
    "none",
]


@pytest.fixture
def cli(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TRAINING_API_URL", deployed.running.api_url)
    monkeypatch.setenv("TRAINING_API_KEY", deployed.admin_key)
    monkeypatch.setenv("COLUMNS", "200")
    return runner


def test_trainctl_submit_wait_status_jobs_logs_stats(cli: CliRunner) -> None:
    result = cli.invoke(
        app,
        ["submit", "--tenant", "cli-tenant", "--param", "num_leaves=15", *QUICK_OPTIONS, "--wait"],
    )
    assert result.exit_code == 0, result.output
    job_id = re.search(r"queued ([0-9a-f-]{36})", result.output).group(1)  # type: ignore[union-attr]
    assert "completed: model cli-tenant:load_forecast:" in result.output

    status = cli.invoke(app, ["status", job_id])
    assert status.exit_code == 0
    assert "completed" in status.output
    assert "metrics.mae" in status.output

    listed = cli.invoke(app, ["jobs", "--tenant", "cli-tenant"])
    assert job_id in listed.output
    assert "1 of 1" in listed.output

    logs = cli.invoke(app, ["logs", job_id, "--tail", "5"])
    assert logs.exit_code == 0
    assert "registered model" in logs.output
    assert len(logs.output.strip().splitlines()) == 5

    stats = cli.invoke(app, ["stats"])
    assert "CPUs reserved 0 of 2" in stats.output

    again = cli.invoke(app, ["cancel", job_id])
    assert again.exit_code == 1
    assert "HTTP 400" in again.output


def test_trainctl_reports_field_errors(cli: CliRunner) -> None:
    result = cli.invoke(app, ["submit", "--horizon", "0", "--feature-set", "nope"])
    assert result.exit_code == 1
    assert "config.horizon" in result.output
    plan = ["--time-budget", "0", "--quantile-method", "boosters"]
    result = cli.invoke(app, ["submit", *plan])
    assert result.exit_code == 1
    assert "config.time_budget_s" in result.output
    assert "config.quantile_method" in result.output


def test_trainctl_features_import_and_list(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "site.csv"
    load_series(seed=5, hours=24 * 30).to_csv(path, index=False)
    imported = cli.invoke(
        app,
        [
            "features",
            "import",
            "site",
            str(path),
            "--timestamp-column",
            "timestamp",
            "--target-column",
            "load_kw",
        ],
    )
    assert imported.exit_code == 0, imported.output
    assert "stored site: 720 rows" in imported.output
    listed = cli.invoke(app, ["features", "list"])
    assert "site" in listed.output
    assert "forecast_basic" in listed.output


def _client(deployed: Deployed) -> TrainingClient:
    name = deployed.config.orchestrator.actor_name
    return TrainingClient(OrchestratorClient.find(name))


async def test_the_orchestrator_client_raises_domain_errors_not_ray_s(deployed: Deployed) -> None:
    orchestrator = OrchestratorClient.find(deployed.config.orchestrator.actor_name)
    with pytest.raises(JobNotFound) as raised:
        await orchestrator.cancel("missing")
    assert not isinstance(raised.value, RayError)  # unwrapped where the call was made
    with pytest.raises(ServiceUnavailable, match="not running"):
        OrchestratorClient.find("no-such-orchestrator")


def quick_job(model_name: str) -> JobSubmission:
    return JobSubmission(
        tenant_id="py-client",
        model_type=ModelType.FORECAST,
        model_name=model_name,
        config=TrainingConfig(feature_set="forecast_basic", target_variable="load_kw", **QUICK),
    )


async def test_python_client_submits_waits_lists_cancels_and_retries(deployed: Deployed) -> None:
    client = _client(deployed)
    submission = quick_job("from_python")
    job = await asyncio.to_thread(client.submit, submission)
    finished = await asyncio.to_thread(client.wait, job.job_id, 90)
    assert finished.status is JobStatus.COMPLETED
    assert finished.model_id is not None
    page = await asyncio.to_thread(client.list_jobs, JobFilters(tenant_id="py-client"))
    assert [j.job_id for j in page.items] == [job.job_id]
    assert (await asyncio.to_thread(client.logs, job.job_id, 3))[-1].message.startswith("completed")
    stats = await asyncio.to_thread(client.stats)
    assert (stats.cluster_cpus, stats.cpus_reserved) == (2, 0)

    with pytest.raises(IllegalTransition):
        await asyncio.to_thread(client.cancel, job.job_id)
    with pytest.raises(JobNotFound):
        await asyncio.to_thread(client.get, "missing")

    slow = submission.model_copy(
        update={
            "config": submission.config.model_copy(
                update=SLOW | {"hyperparameters": SLOW["hyperparameters"]}
            )
        }
    )
    running = await asyncio.to_thread(client.submit, slow, "py-client-slow-1")
    repeated = await asyncio.to_thread(client.submit, slow, "py-client-slow-1")
    assert repeated.job_id == running.job_id, "a repeated call gets the first call's job"
    cancelled = await asyncio.to_thread(client.cancel, running.job_id)
    assert cancelled.status is JobStatus.CANCELLED
    retried = await asyncio.to_thread(client.retry, running.job_id)
    assert retried.retry_of == running.job_id
    await asyncio.to_thread(client.cancel, retried.job_id)


def test_trainctl_hpo_submit_and_watch(cli: CliRunner) -> None:
    spec = '{"type": "float", "low": 0.05, "high": 0.2}'
    search = ["--hpo", "--trials", "4", "--param", f"learning_rate={spec}"]
    result = cli.invoke(app, ["submit", *search, *QUICK_OPTIONS, "--wait"])
    assert result.exit_code == 0, result.output
    assert "completed: model" in result.output
    job_id = re.search(r"queued ([0-9a-f-]{36})", result.output).group(1)  # type: ignore[union-attr]
    watched = cli.invoke(app, ["watch", job_id])
    assert watched.exit_code == 0
    assert re.search(r"trials \d done, \d pruned, 0 failed of 4", watched.output), watched.output


def test_trainctl_experiments_and_models(cli: CliRunner, tmp_path: Path) -> None:
    for rate in ("0.3", "0.05"):
        submitted = cli.invoke(
            app,
            [
                "submit",
                "--tenant",
                "cli-exp",
                "--model-name",
                "cli_exp",
                "--param",
                f"learning_rate={rate}",
                *QUICK_OPTIONS,
                "--wait",
            ],
        )
        assert submitted.exit_code == 0, submitted.output

    listed = cli.invoke(
        app, ["experiments", "list", "--tenant", "cli-exp", "--order-by", "metric.mae", "--asc"]
    )
    assert listed.exit_code == 0, listed.output
    ids = re.findall(r"^\S*\s*([0-9a-f-]{36})", listed.output, re.MULTILINE)
    assert len(ids) == 2, listed.output
    assert "2 of 2" in listed.output

    shown = cli.invoke(app, ["experiments", "show", ids[0]])
    assert shown.exit_code == 0
    assert re.search(r"learning_rate\s+│\s+(0\.05|0\.3)\s", shown.output), shown.output

    plot = tmp_path / "curves.png"
    compared = cli.invoke(app, ["experiments", "compare", *ids, "--plot", str(plot)])
    assert compared.exit_code == 0, compared.output
    assert "learning_rate" in compared.output
    for experiment_id in ids:  # two "cli_exp attempt 1": told apart by their ids
        assert f"attempt 1 {experiment_id[:8]}" in compared.output.replace("\n", " ")
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert plot.stat().st_size > 5_000, "a plot with two curves, not an empty canvas"

    models = cli.invoke(app, ["models", "list", "--tenant", "cli-exp"])
    version = re.search(r"cli-exp:cli_exp:(\d{8}\.\d{6})", models.output).group(1)  # type: ignore[union-attr]
    aliased = cli.invoke(app, ["models", "alias", "cli-exp", "cli_exp", "staging", version])
    assert aliased.exit_code == 0, aliased.output
    assert f"staging -> cli-exp:cli_exp:{version}" in aliased.output
    assert "staging" in cli.invoke(app, ["models", "list", "--tenant", "cli-exp"]).output
    removed = cli.invoke(app, ["models", "alias", "cli-exp", "cli_exp", "staging", "--delete"])
    assert removed.exit_code == 0
    gone = cli.invoke(app, ["models", "alias", "cli-exp", "cli_exp", "staging", "--delete"])
    assert gone.exit_code == 1
    assert "HTTP 404" in gone.output


def test_trainctl_keys_and_schedules(
    cli: CliRunner, deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINING_DATABASE_URL", deployed.config.database_url)
    created = cli.invoke(
        app, ["keys", "create", "--tenant", "cli-keys", "--role", "member", "--expires-in", "30d"]
    )
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    key_id = token.split("_")[1]
    assert token.startswith("trk_")

    monkeypatch.setenv("TRAINING_API_KEY", token)
    made = cli.invoke(
        app,
        [
            "schedules",
            "create",
            "nightly",
            "--cron",
            "0 2 * * *",
            "--timezone",
            "Europe/Berlin",
            "--tenant",
            "cli-keys",
            "--disabled",
        ],
    )
    assert made.exit_code == 0, made.output
    schedule_id = re.search(r"schedule ([0-9a-f-]{36})", made.output).group(1)  # type: ignore[union-attr]
    listed = cli.invoke(app, ["schedules", "list"])
    assert "nightly" in listed.output
    assert "Europe/Berlin" in listed.output
    shown = cli.invoke(app, ["schedules", "show", schedule_id])
    assert "next fires: " in shown.output
    assert cli.invoke(app, ["schedules", "enable", schedule_id]).exit_code == 0
    assert cli.invoke(app, ["schedules", "delete", schedule_id]).exit_code == 0
    other = cli.invoke(app, ["schedules", "create", "x", "--cron", "0 2 * * *", "--tenant", "b"])
    assert other.exit_code == 1
    assert "HTTP 403" in other.output

    keys = cli.invoke(app, ["keys", "list", "--tenant", "cli-keys"])
    assert key_id in keys.output
    secret = token.split("_", 2)[2]  # trk_<key id>_<secret>; the secret may hold "_" itself
    assert secret not in keys.output, "the secret is never shown again"
    assert cli.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    refused = cli.invoke(app, ["schedules", "list"])
    assert refused.exit_code == 1
    assert "HTTP 401" in refused.output
    assert cli.invoke(app, ["keys", "revoke", "nope"]).exit_code == 1


def test_trainctl_predict_sends_each_value_as_written(cli: CliRunner, tmp_path: Path) -> None:
    frame = meters(count=2, days=30)
    frame["meter"] = frame["meter"].map({"m0": "007", "m1": "008"})
    name = f"zeros{uuid.uuid4().hex[:6]}"
    frame.to_csv(tmp_path / "set.csv", index=False)
    imported = cli.invoke(
        app,
        [
            "features",
            "import",
            name,
            str(tmp_path / "set.csv"),
            "--timestamp-column",
            "timestamp",
            "--target-column",
            "load_kw",
            "--series-column",
            "meter",
        ],
    )
    assert imported.exit_code == 0, imported.output
    submitted = cli.invoke(
        app,
        ["submit", "--tenant", "cli-zeros", "--feature-set", name, *QUICK_OPTIONS, "--wait"],
    )
    assert submitted.exit_code == 0, submitted.output
    model_id = re.search(r"model (cli-zeros:\S+:\d{8}\.\d{6})", submitted.output).group(1)  # type: ignore[union-attr]

    rows = frame[frame["meter"] == "007"].tail(24 * 9).copy()
    rows.loc[rows.index[-24:], "load_kw"] = None  # the day to forecast
    rows.to_csv(tmp_path / "rows.csv", index=False)
    predicted = cli.invoke(app, ["models", "predict", model_id, str(tmp_path / "rows.csv")])
    assert predicted.exit_code == 0, predicted.output
    assert predicted.output.count(" 007 ") == 24, predicted.output

    (tmp_path / "empty.csv").write_text("")
    empty = cli.invoke(app, ["models", "predict", model_id, str(tmp_path / "empty.csv")])
    assert empty.exit_code == 2, empty.output
    assert "not a CSV of rows" in empty.output


class Outage(TrainingClient):
    """The real client, its first reads failing as in a database outage."""

    def __init__(self, client: TrainingClient, failures: int) -> None:
        super().__init__(client._orchestrator)
        self.failures = failures

    def get(self, job_id: str) -> JobRecord:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailable("the database is unavailable (test)")
        return super().get(job_id)


async def test_python_client_waits_out_an_outage(deployed: Deployed) -> None:
    client = _client(deployed)
    job = await asyncio.to_thread(client.submit, quick_job("through_outage"))
    finished = await asyncio.to_thread(Outage(client, failures=3).wait, job.job_id, 90, 0.05)
    assert finished.status is JobStatus.COMPLETED
