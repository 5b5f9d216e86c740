"""The console's model page shows the decisions on the model's champion, in Chromium."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.serve_app.conftest import TEN_WEEKS, Deployed
from tests.serve_app.test_models_api import WEAK, completed

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOT_DIR")


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


async def test_the_model_page_lists_the_promotions_and_the_days_compared(
    deployed: Deployed, page: Page
) -> None:
    name = f"console-promo-{uuid.uuid4().hex[:8]}"
    promote = {**TEN_WEEKS, "promote_champion": True}
    weak = await completed(deployed, name, {**promote, **WEAK})
    strong = await completed(deployed, name, promote)

    await page.goto(f"/ui/#/models/{strong['model_id']}")
    table = page.get_by_test_id("promotions")
    await expect(table.locator("tbody tr")).to_have_count(2)
    rows = table.locator("tbody tr")
    await expect(rows.nth(0)).to_have_attribute("data-decision", "promoted")
    await expect(rows.nth(0)).to_contain_text(weak["model_id"].rsplit(":", 1)[1])
    await expect(rows.nth(0)).to_contain_text("beats the champion: MAE")
    await expect(rows.nth(1)).to_contain_text("no champion")
    await expect(rows.nth(0).locator("strong")).to_have_text(strong["model_id"].rsplit(":", 1)[1])
    days = page.get_by_test_id("promotion-days")
    await expect(days.locator("canvas").first).to_be_visible()
    if SCREENSHOTS:
        section = page.locator('section[aria-label="Promotions"]')
        await section.screenshot(path=str(Path(SCREENSHOTS) / "console-promotions.png"))
