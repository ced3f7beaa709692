"""The page at / in a real headless Chromium (Debian's, driven by Playwright; no browser is downloaded): translate
a German sentence and read the English, watch generated text grow, see an error in the page, fit a phone screen.
Skipped where Chromium or Playwright is absent."""
import shutil
import time
from pathlib import Path

import pytest

from nmt.server.app import create_app
from nmt.server.settings import ServeSettings
from tests.server.conftest import live_server, pick

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
# what a sandboxed machine with no network needs (see the README's Serving section)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser_page(runners, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    served = pick(runners, "translate", "charlm", "tag")
    app = create_app(ServeSettings(), runners={**served, "classify": runners["classify"]})
    with live_server(app) as url, sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM if CHROMIUM.exists()
                                                                                 else shutil.which("chromium")),
            headless=True, args=FLAGS, viewport={"width": 1000, "height": 900})
        try:
            page = context.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#tab-translate", timeout=30_000)
            yield page
        finally:
            context.close()


def test_translate_a_german_sentence(browser_page, tmp_path):
    page = browser_page
    page.click("#tab-translate")
    page.fill("#translate-input", "Zwei Hunde spielen im Schnee.")
    page.click("#translate-run")
    page.wait_for_selector("#translate-output .translation", timeout=30_000)
    english = page.inner_text("#translate-output .translation")
    assert "dogs" in english.lower() and "snow" in english.lower(), english
    assert page.locator("#translate-output table.attention td").count() > 10       # the heatmap
    page.screenshot(path=str(tmp_path / "translate.png"), full_page=True)
    assert (tmp_path / "translate.png").stat().st_size > 10_000


def test_generated_text_grows_while_streaming(browser_page, tmp_path):
    page = browser_page
    page.click("#tab-charlm")
    page.fill("#charlm-input", "ROMEO:")
    page.fill("#charlm-length", "3000")
    page.click("#charlm-run")
    lengths, deadline = [], time.monotonic() + 30
    while time.monotonic() < deadline and len(set(lengths)) < 4:
        lengths.append(len(page.inner_text("#charlm-output")))
        time.sleep(0.05)
    page.screenshot(path=str(tmp_path / "generate.png"), full_page=True)
    page.click("#charlm-stop")
    assert len(set(lengths)) >= 4 and lengths == sorted(lengths), lengths       # it grew, step by step
    page.wait_for_function("document.querySelector('#charlm-meta').textContent !== ''", timeout=10_000)
    assert page.is_enabled("#charlm-run")


def test_errors_are_shown_in_the_page(browser_page):
    page = browser_page
    page.click("#tab-charlm")
    page.fill("#charlm-length", "0")
    page.click("#charlm-run")
    page.wait_for_function("document.querySelector('#charlm-error').textContent !== ''", timeout=10_000)
    assert "length" in page.inner_text("#charlm-error")
    page.fill("#charlm-length", "400")


def test_entities_are_coloured_and_the_page_fits_a_phone(browser_page, tmp_path):
    page = browser_page
    page.set_viewport_size({"width": 375, "height": 740})
    try:
        page.click("#tab-tag")
        page.fill("#tag-input", "Angela Merkel met Emmanuel Macron in Paris.")
        page.click("#tag-run")
        page.wait_for_selector("#tag-output .ent", timeout=30_000)
        kinds = page.eval_on_selector_all("#tag-output .ent", "els => els.map(e => e.classList[1])")
        assert "PER" in kinds and "LOC" in kinds
        colours = page.eval_on_selector_all("#tag-output .ent",
                                            "els => els.map(e => getComputedStyle(e).backgroundColor)")
        assert len(set(colours)) >= 2
        assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1      # no sideways scrolling
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1000, "height": 900})
