"""The report page in a real headless Chromium: it loads from a file with no console error and no request,
its key numbers in the DOM equal the run's eval JSON, and a screenshot is saved under the test's tmp folder.

Needs the Python package `playwright` (the dev extra) and a system Chromium (Debian: `apt-get install
chromium`; .ci/run installs it). Playwright's own browser download is not used: the test drives the system
browser through `executable_path`. Without either, the test skips and says why."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from report_fixtures import HOSTILE, fake_run

from tunesmith.report import write_report

pytestmark = pytest.mark.e2e  # a real browser process: not in make test-fast

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """$TUNESMITH_CHROMIUM, else the first Chromium on PATH."""
    given = os.environ.get("TUNESMITH_CHROMIUM")
    if given:
        return given if os.path.isfile(given) and os.access(given, os.X_OK) else None
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def test_report_renders_in_chromium_with_the_eval_numbers(tmp_path):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    browser_path = find_chromium()
    if browser_path is None:
        pytest.skip("no Chromium found on PATH (apt-get install chromium, or set TUNESMITH_CHROMIUM)")
    run = fake_run(tmp_path)
    page_file = write_report(run)
    result = json.loads((run / "eval_test.json").read_text())

    errors, requests, dialogs = [], [], []
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(page_file.as_uri(), wait_until="load")

            assert errors == [] and dialogs == []
            assert requests == [page_file.as_uri()]  # the page itself and nothing else: no network
            assert page.evaluate("document.scripts.length") == 0
            assert page.title() == "tunesmith run: fake-run"

            for system in ("base", "few_shot", "rag", "tuned", "tuned_rag"):
                for key, value in result[system].items():
                    if isinstance(value, (int, float)):
                        cell = page.locator(f'#eval-test td[data-metric="{system}.{key}"]')
                        assert json.loads(cell.get_attribute("data-value")) == value, (system, key)
                        assert cell.inner_text() == f"{value:.4g}"
            assert page.locator("#kpi-tuned b").inner_text() == f"{result['tuned']['contains']:.4g}"
            assert page.locator("#verdict").inner_text() == result["verdict"]["text"]
            # The hostile sample answer is shown as text: no element was made from it.
            assert page.locator('#samples-test tr[data-sample="0"] td[data-system="tuned"]').inner_text() == HOSTILE
            assert page.locator("#samples-test b").count() == 0
            assert page.locator("#samples-test tr[data-sample]").count() == 10

            # The charts are drawn at a real size, with the kept step marked.
            box = page.locator('svg[data-chart="loss"]').bounding_box()
            assert box["width"] > 400 and box["height"] > 150
            assert page.locator('svg[data-chart="loss"] g.marker').get_attribute("data-marker-x") == "15"
            assert page.locator('svg[data-chart="forgetting"] circle').count() == 5

            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
