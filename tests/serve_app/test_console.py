"""The web console in a real browser: Debian's Chromium driven by Playwright against the
deployed service (auth on; the key is typed into the console's login field).

The console is the same whichever database the service uses: like the rest of the API's
tests, these run on the PostgreSQL deployment. With ``CONSOLE_SCREENSHOT_DIR``
set, the jobs page and an HPO job's page are saved there (the README's screenshots).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import uvicorn
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect
from ray import serve

from db.records import MetricPoint, NewExperiment
from domain.auth import Role
from domain.events import JobEvent
from serve_app.app import create_app
from serve_app.deployment import APP_NAME, connect
from serve_app.service import api_config
from tests.db.factories import new_job
from tests.network import free_port
from tests.serve_app.conftest import QUICK, SLOW, TEN_WEEKS, Deployed, count_jobs
from tests.serve_app.test_batch_forecasts import finished, upload
from tests.serve_app.test_forecasting import P10_P90, meters
from tests.serve_app.test_monitoring import HORIZON, monitor

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOT_DIR")
#: A job of about half a second: 30 trees on ten weeks of hourly data.
TINY: dict[str, Any] = {**TEN_WEEKS, "hyperparameters": {"n_estimators": 30}}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, deployed: Deployed) -> AsyncIterator[Page]:
    context = await browser.new_context(
        base_url=deployed.running.api_url, viewport={"width": 1400, "height": 1000}
    )
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    await opened.goto("/ui/")
    await opened.get_by_label("API key").fill(deployed.admin_key)
    await opened.get_by_role("button", name="Use key").click()
    await expect(opened.get_by_role("status")).to_have_text("key in use")
    yield opened
    await context.close()
    assert errors == [], "the console raised in the browser"


@contextlib.asynccontextmanager
async def served_with_auth_off(deployed: Deployed) -> AsyncIterator[str]:
    """The service's app with auth off, on its database and orchestrator, served by uvicorn
    in this process (one Serve instance has one HTTP port, and the console's paths are
    absolute, so a second Serve app under a route prefix would not do)."""
    config = dataclasses.replace(api_config(deployed.config), auth_enabled=False)
    services = connect(config, serve.get_deployment_handle("ModelServer", APP_NAME))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        await services.store.database.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def show_jobs_of(page: Page, model_name: str) -> None:
    await page.goto("/ui/#/jobs")
    await page.get_by_label("Model").fill(model_name)
    await page.get_by_label("Model").press("Enter")
    await page.get_by_label("Model").blur()


async def submit_tiny_job(page: Page, model_name: str) -> str:
    """Fill the submit page's form with a tiny job and send it; the new job's id."""
    await page.get_by_label("Model name").fill(model_name)
    await expect(page.get_by_label("Feature set").locator("option")).not_to_have_count(0)
    await page.get_by_label("Feature set").select_option("forecast_basic")
    await page.get_by_label("Start date").fill(TINY["start_date"])
    await page.get_by_label("End date").fill(TINY["end_date"])
    await page.get_by_role("button", name="Submit job").click()
    await expect(page).to_have_url(re.compile(r"#/jobs/[\w-]+$"))
    job_id = page.url.rsplit("/", 1)[-1]
    return job_id


async def points_drawn(page: Page, selector: str) -> int:
    canvas = page.locator(f"{selector} canvas[data-points]").first
    await expect(canvas).to_be_visible()
    return int(await canvas.get_attribute("data-points") or 0)


async def test_the_console_opens_and_refuses_without_a_key(
    browser: Browser, deployed: Deployed, page: Page
) -> None:
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    await expect(page.get_by_test_id("jobs-table")).to_be_visible()
    for section in ("Jobs", "Submit", "Experiments", "Models"):
        await expect(page.get_by_role("link", name=section)).to_be_visible()

    anonymous = await browser.new_page(base_url=deployed.running.api_url)
    await anonymous.goto("/ui")
    await expect(anonymous.get_by_role("alert")).to_contain_text("API key")
    await anonymous.close()


async def test_with_auth_off_the_console_works_without_a_key(
    browser: Browser, deployed: Deployed
) -> None:
    name = unique("open")
    async with served_with_auth_off(deployed) as url:
        page = await browser.new_page(base_url=url)
        await page.goto("/ui/#/submit")
        await expect(page.get_by_role("status")).to_have_text("no key")
        job_id = await submit_tiny_job(page, name)
        await show_jobs_of(page, name)
        row = page.locator(f'tr[data-job-id="{job_id}"]')
        await expect(row.get_by_text("completed", exact=True)).to_be_visible(timeout=120_000)
        await page.close()
    assert (await deployed.job(job_id))["model_name"] == name


async def test_a_job_submitted_through_the_form_reaches_100_percent_and_shows_its_curve(
    deployed: Deployed, page: Page
) -> None:
    name = unique("form")
    await page.get_by_role("link", name="Submit").click()
    job_id = await submit_tiny_job(page, name)

    await show_jobs_of(page, name)
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    await expect(row.locator("progress")).to_have_attribute("value", "100", timeout=120_000)
    await expect(row.get_by_text("completed", exact=True)).to_be_visible()

    await row.get_by_role("link").click()
    await expect(page.get_by_test_id("validation-curve")).to_be_visible()
    assert await points_drawn(page, '[data-testid="validation-curve"]') > 10
    await expect(page.get_by_role("cell", name="register", exact=True)).to_be_visible()
    await expect(page.get_by_test_id("log-tail")).to_contain_text("completed; registered model")

    job = await deployed.job(job_id)
    await page.get_by_role("link", name=job["model_id"]).click()
    # Actual, predicted and the P10-P90 band's two edges: four lines over the test period.
    tested = (await deployed.http.get(f"/ai/models/{job['model_id']}/test-predictions")).json()
    drawn = await points_drawn(page, '[data-testid="forecast-vs-actual"]')
    assert drawn == 4 * tested["total"] > 100  # every page of it
    importance = page.get_by_test_id("feature-importance").locator("tr")
    model = (await deployed.http.get(f"/ai/models/{job['model_id']}")).json()
    await expect(importance).to_have_count(len(model["features"]))
    strongest = max(model["feature_importance"], key=model["feature_importance"].get)
    await expect(importance.first.locator("td").first).to_have_text(strongest)


async def test_cancelling_a_queued_job_and_retrying_it(deployed: Deployed, page: Page) -> None:
    blocker = await deployed.submit(SLOW, model_name=unique("blocker"))
    name = unique("queued")
    queued = await deployed.submit(TINY, model_name=name)
    try:
        await show_jobs_of(page, name)
        row = page.locator(f'tr[data-job-id="{queued}"]')
        await expect(row.get_by_text("queued", exact=True)).to_be_visible()

        async def confirm(dialog: Dialog) -> None:
            assert queued in dialog.message
            await dialog.accept()

        page.once("dialog", confirm)
        await row.get_by_role("button", name=f"Cancel job {queued}").click()
        await expect(row.get_by_text("cancelled", exact=True)).to_be_visible()
        assert (await deployed.job(queued))["status"] == "cancelled"

        page.once("dialog", confirm)
        await row.get_by_role("button", name=f"Retry job {queued}").click()
        rows = page.get_by_test_id("jobs-table").locator("tbody tr")
        await expect(rows).to_have_count(2)
        listed = await deployed.http.get("/ai/training/jobs", params={"model_name": name})
        [retried] = [j for j in listed.json()["jobs"] if j["job_id"] != queued]
        assert retried["retry_of"] == queued
    finally:
        await deployed.http.delete(f"/ai/training/jobs/{blocker}")


async def test_the_form_offers_the_feature_sets_of_the_tenant_typed_in(
    deployed: Deployed, page: Page
) -> None:
    name = unique("own").replace("-", "_")
    uploaded = await deployed.http.put(
        f"/ai/training/feature-sets/{name}",
        params={
            "timestamp_column": "timestamp",
            "target_column": "load_kw",
            "tenant_id": "tenant-b",
        },
        content=meters(count=1, days=10).drop(columns=["meter"]).to_csv(index=False).encode(),
    )
    assert uploaded.status_code == 200, uploaded.text
    await page.get_by_role("link", name="Submit").click()
    offered = page.get_by_label("Feature set").locator("option")
    await expect(offered).not_to_have_count(0)
    assert name not in await offered.all_inner_texts(), "tenant-a's sets, at first"

    await page.get_by_label("Tenant", exact=True).fill("tenant-b")
    await page.get_by_label("Tenant", exact=True).blur()
    await expect(offered.filter(has_text=name)).to_have_count(1)
    assert "forecast_basic" in await offered.all_inner_texts(), "the shared sets stay"


async def test_a_bad_form_value_shows_the_api_error_next_to_the_field(
    deployed: Deployed, page: Page
) -> None:
    jobs = await count_jobs(deployed.store)
    await page.goto("/ui/#/submit")
    await expect(page.get_by_label("Feature set").locator("option")).not_to_have_count(0)
    await page.get_by_label("Horizon (steps)").fill("0")
    await page.get_by_role("button", name="Submit job").click()
    horizon = page.locator('[data-field="config.horizon"] .field-error')
    await expect(horizon).to_contain_text("greater than")

    await page.get_by_label("Horizon (steps)").fill("24")
    await page.get_by_label("Target").fill("not_a_column")
    await page.get_by_role("button", name="Submit job").click()
    await expect(horizon).to_have_text("")
    target = page.locator('[data-field="config.target_variable"] .field-error')
    await expect(target).to_contain_text("has target 'load_kw'")
    assert await count_jobs(deployed.store) == jobs, "a refused form creates no job"


async def test_an_hpo_job_shows_its_search(deployed: Deployed, page: Page) -> None:
    name = unique("search")
    job_id = await deployed.submit(TINY | {"enable_hpo": True, "n_trials": 6}, model_name=name)
    job = await deployed.wait_finished(job_id, timeout=240)
    assert job["status"] == "completed", job

    await show_jobs_of(page, name)
    await expect(page.locator(f'tr[data-job-id="{job_id}"] progress')).to_have_attribute(
        "value", "100"
    )
    # Two trials at once on the test cluster's 2 CPUs: the stage bundle and a trial slot.
    cpus = page.locator(f'tr[data-job-id="{job_id}"] td[title]')
    await expect(cpus).to_have_text("2")
    await expect(cpus).to_have_attribute("title", "2 CPUs (1 + 1 trial slot, PACK)")
    await expect(page.get_by_test_id("cluster-cpus")).to_contain_text("CPUs reserved")
    await expect(page.get_by_test_id("cluster-cpus")).to_contain_text("of 2 (")
    if SCREENSHOTS:
        await page.goto("/ui/#/jobs")
        await expect(page.get_by_test_id("jobs-table")).to_be_visible()
        await page.screenshot(path=Path(SCREENSHOTS) / "console-jobs.png", full_page=True)

    await page.goto(f"/ui/#/jobs/{job_id}")
    await expect(page.get_by_test_id("job-resources")).to_have_text(
        "Holds 2 CPUs (1 + 1 trial slot, PACK) while it runs"
    )
    assert await points_drawn(page, '[data-testid="best-value-curve"]') >= 1
    trials = page.get_by_test_id("trials-table").locator("tbody tr")
    await expect(trials).to_have_count(6)
    assert await points_drawn(page, '[data-testid="trial-scatters"]') >= 1
    statuses = await trials.evaluate_all("rows => rows.map(r => r.dataset.trialStatus)")
    assert set(statuses) <= {"completed", "pruned", "failed"}
    marked = page.get_by_test_id("trials-table").locator("[data-status]")
    assert await marked.all_inner_texts() == statuses, "status shown as text"
    if SCREENSHOTS:
        await page.screenshot(path=Path(SCREENSHOTS) / "console-hpo-job.png", full_page=True)


async def test_a_requeued_backtested_searchs_page_shows_its_run_and_its_newest_search(
    deployed: Deployed, page: Page
) -> None:
    store, catalog = deployed.store, deployed.experiments
    job = await store.create_job(new_job(model_name=unique("requeued")))
    await store.transition(job.job_id, JobEvent.START)
    await catalog.create_experiments(
        job.job_id, [NewExperiment("search", metrics=[MetricPoint("best_value", 15.0, 1)])]
    )
    await store.transition(job.job_id, JobEvent.REQUEUE)  # the worker died mid-search
    await store.transition(job.job_id, JobEvent.START)
    curve = [MetricPoint("validation_l1", 20.0 - step / 2, step) for step in range(1, 21)]
    await catalog.create_experiment(job.job_id, f"{job.model_name} attempt 2", {}, curve)
    window = [MetricPoint("mae", 3.0, 0)]  # a backtest window, recorded after the run
    await catalog.create_experiment(job.job_id, "backtest window 1", {}, window)
    best = [MetricPoint("best_value", 15.0 - step, step) for step in range(1, 4)]
    await catalog.create_experiments(job.job_id, [NewExperiment("search", metrics=best)])
    await store.transition(job.job_id, JobEvent.FAIL, error_message="stopped by the test")

    await page.goto(f"/ui/#/jobs/{job.job_id}")
    assert await points_drawn(page, '[data-testid="validation-curve"]') == 20
    assert await points_drawn(page, '[data-testid="best-value-curve"]') == 3


async def test_a_refused_action_keeps_its_error_and_a_bad_filter_names_its_field(
    browser: Browser, deployed: Deployed
) -> None:
    name = unique("refused")
    job = await deployed.store.create_job(new_job(model_name=name))
    await deployed.store.transition(job.job_id, JobEvent.START)
    await deployed.store.transition(job.job_id, JobEvent.FAIL, error_message="stopped by a test")
    viewer = await deployed.key("tenant-a", Role.VIEWER)
    context = await browser.new_context(base_url=deployed.running.api_url)
    page = await context.new_page()
    try:
        await page.goto("/ui/")
        await page.get_by_label("API key").fill(viewer)
        await page.get_by_role("button", name="Use key").click()
        await show_jobs_of(page, name)

        async def confirm(dialog: Dialog) -> None:
            await dialog.accept()

        page.once("dialog", confirm)
        await page.get_by_role("button", name=f"Retry job {job.job_id}").click()
        refused = page.get_by_role("alert")
        await expect(refused).to_have_count(1)
        await page.wait_for_timeout(2_500)  # past the table's next poll
        await expect(refused).to_have_count(1)
        await expect(page.get_by_test_id("jobs-table")).to_be_visible()

        await page.get_by_label("Tenant").fill("tenant a")
        await page.get_by_label("Tenant").press("Enter")
        await page.get_by_label("Tenant").blur()
        bad_filter = page.get_by_role("alert").filter(has_text="tenant_id: String should match")
        await expect(bad_filter).to_be_visible()
    finally:
        await context.close()


async def test_experiments_compare_side_by_side(deployed: Deployed, page: Page) -> None:
    name = unique("compare")
    job_ids = [
        await deployed.submit(
            TINY | {"hyperparameters": {"n_estimators": 30, "learning_rate": rate}},
            model_name=name,
        )
        for rate in (0.05, 0.2)
    ]
    for job_id in job_ids:
        assert (await deployed.wait_finished(job_id))["status"] == "completed"

    await page.goto("/ui/#/experiments")
    await page.get_by_label("Model").fill(name)
    await page.get_by_label("Model").press("Enter")
    boxes = page.get_by_test_id("experiments-table").get_by_role("checkbox")
    await expect(boxes).to_have_count(2)
    await expect(page.get_by_text("Page 1 of 1 (2 experiments)")).to_be_visible()
    for box in await boxes.all():
        await box.check()
    await page.get_by_role("button", name="Compare selected").click()
    learning_rate = page.get_by_role("row", name="learning_rate (differs)")
    await expect(learning_rate).to_have_class("differs")
    assert await points_drawn(page, '[data-testid="compare-curve"]') > 10

    await page.goto("/ui/#/models")
    await page.get_by_label("Model").fill(name)
    await page.get_by_label("Model").press("Enter")
    await expect(page.get_by_test_id("models-table").locator("tbody tr")).to_have_count(2)
    await expect(page.get_by_text("Page 1 of 1 (2 versions)")).to_be_visible()


async def test_a_model_page_charts_its_live_accuracy(deployed: Deployed, page: Page) -> None:
    """Two batch forecasts a day apart, scored once a version brings their actuals: one
    point each against the test MAE and its band, the model's training job marked, and
    the status with the ratio beside it. The meters end now, so the job falls in the
    charted period."""
    full = meters(days=36)
    full["timestamp"] = pd.to_datetime(full["timestamp"], utc=True)
    last = full["timestamp"].max()
    full["timestamp"] += pd.Timestamp.now(tz="UTC").floor("h") - (last - pd.Timedelta(days=1))
    name = f"conmon{uuid.uuid4().hex[:6]}"
    model_name = f"mon_{name}"

    def until(days: int) -> pd.DataFrame:
        kept: pd.DataFrame = full[
            full["timestamp"] <= full["timestamp"].max() - pd.Timedelta(days=days)
        ]
        return kept

    async def forecast() -> None:
        body = {"feature_set": name, "horizon": HORIZON}
        started = await deployed.http.post(f"/ai/models/{model_id}/forecasts", json=body)
        assert started.status_code == 201, started.text
        done = await finished(deployed, started.json()["forecast_id"])
        assert done["forecast"]["status"] == "completed"

    await upload(deployed, name, until(2))
    config = {**QUICK, **P10_P90, "feature_set": name, "horizon": HORIZON}
    job = await deployed.wait_finished(
        await deployed.submit(config, model_name=model_name), timeout=180
    )
    assert job["status"] == "completed", job
    model_id = job["model_id"]
    await forecast()
    await upload(deployed, name, until(1))  # a day on: the next forecast
    await forecast()

    await page.goto(f"/ui/#/models/{model_id}")
    monitoring = page.get_by_test_id("monitoring")
    await expect(monitoring.get_by_test_id("monitoring-empty")).to_contain_text(
        "No forecast of this model has actuals yet"
    )

    await upload(deployed, name, full)  # the actuals of both
    assert await monitor(deployed) == 2
    scored = (await deployed.http.get(f"/ai/models/{model_id}/monitoring")).json()
    accuracy = scored["status"]["accuracy"]
    await page.reload()
    chart = monitoring.get_by_test_id("monitoring-chart")
    canvas = chart.locator("canvas[data-series-points]")
    await expect(canvas).to_be_visible()
    drawn = json.loads(await canvas.get_attribute("data-series-points") or "{}")
    # One point per scored forecast; the line and the band's edges span the period.
    assert drawn == {
        "live MAE": 2,
        "test MAE": 4,
        "band high": 4,
        "band low": 4,
    }, drawn
    line = float(await chart.locator("figure").get_attribute("data-test-mae") or "nan")
    assert line == pytest.approx(accuracy["test_mae"])
    await expect(chart.locator(".u-legend")).to_contain_text("test MAE")

    status = monitoring.get_by_test_id("monitoring-status")
    await expect(status.locator("[data-status]").first).to_have_text(scored["status"]["status"])
    ratio = f"{accuracy['ratio']:.2f}"
    await expect(status.locator("p").first).to_contain_text(f"live MAE {ratio}")
    await expect(status.locator("tr", has_text="ratio (live / test)")).to_contain_text(ratio)
    await expect(status.get_by_test_id("accuracy-check")).to_contain_text(
        f"{accuracy['windows']} / {accuracy['test_windows']}"
    )
    await expect(status.locator('tr[data-column="temperature_c"]')).to_be_visible()

    decided = await deployed.http.get(f"/ai/models/tenant-a/{model_name}/promotions")
    decisions = decided.json()["promotions"] if decided.status_code == 200 else []
    markers = chart.locator(".marker")
    await expect(markers).to_have_count(1 + len(decisions))
    trained = chart.locator('.marker[data-marker="job"]')
    described = re.compile(f"job {job['job_id'][:8]} .* trained this version")
    await expect(trained).to_have_attribute("title", described)
    if SCREENSHOTS:
        await monitoring.screenshot(path=Path(SCREENSHOTS) / "console-model-monitoring.png")
