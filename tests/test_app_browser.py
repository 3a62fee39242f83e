"""The app in a real browser: Debian's headless Chromium driven by Playwright.

It loads the page, runs an example episode and waits for the result pictures,
then saves ``artifacts/app.png`` (CI keeps it). Without /usr/bin/chromium the
tests are skipped on a developer's machine (``make test`` installs it) and fail
in CI, where a missing browser must not pass silently.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from app_fixtures import ROOT, Served, app_checkpoint, app_server, serve_app  # noqa: F401  (fixtures)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing in CI; install Debian's chromium (make chromium)")
    pytest.skip(f"{CHROMIUM} is missing; install it with `apt-get install chromium` (make test does)",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()


def test_an_example_runs_in_the_browser_and_shows_its_results(page, app_server: Served) -> None:
    page.goto(app_server.url)
    sync_api.expect(page.get_by_text("find an object from a few examples")).to_be_visible(timeout=60_000)
    sync_api.expect(page.locator(".hs-ok")).to_be_visible(timeout=60_000)  # the banner: weights loaded

    page.get_by_role("button", name="Person, 1-shot").click()
    sync_api.expect(page.locator("#support-1-mask img")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Segment", exact=True).click()

    sync_api.expect(page.get_by_text("of the 512×600 query is foreground")).to_be_visible(timeout=120_000)
    result = page.locator("#result-image img")
    sync_api.expect(result).to_be_visible()
    assert result.evaluate("img => img.complete && img.naturalWidth") > 0
    sync_api.expect(page.locator("#mask-file")).to_contain_text("grace_hopper_mask")
    heatmaps = page.locator("#level-4 img")
    sync_api.expect(heatmaps).to_have_count(3)
    heatmaps.first.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('#level-4 img')].every(i => i.complete && i.naturalWidth)")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)

    box = result.bounding_box()
    result.click(position={"x": box["width"] / 2, "y": box["height"] / 2})  # a point on the query
    page.get_by_role("tab", name="Click a point").click()
    sync_api.expect(page.locator("#point-maps img").first).to_be_visible(timeout=60_000)


def test_without_weights_the_page_says_what_is_missing_and_how_to_provide_them(page, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-checkpoint.safetensors"
    with serve_app(missing, tmp_path / "app.log") as served:
        page.goto(served.url)
        banner = page.locator(".hs-missing")
        sync_api.expect(banner).to_be_visible(timeout=60_000)
        sync_api.expect(banner).to_contain_text("No weights")
        sync_api.expect(banner).to_contain_text("HSNET_WEIGHTS")
        sync_api.expect(banner).to_contain_text("--weights")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "app-missing-weights.png"), full_page=False)
