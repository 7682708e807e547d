"""The cache panel in a real JupyterLab, in Debian's chromium, driven by Playwright.

The `lab` fixture (conftest.py) starts JupyterLab offline on a copy of
`quickstart.ipynb`; this test runs every cell through the Run menu and checks
the `%claude_panel` widget in the DOM: the blocks with their cache markers, the
second call reading from cache, and the Advance button moving the countdown.
A screenshot goes to `test-artifacts/` (and to `docs/panel.png` with
`PCACHE_SCREENSHOT=1`, via `make screenshot`).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Locator, expect, sync_playwright

from pcache_magic.core.fmt import duration
from pcache_magic.view.panel import ADVANCE_SECONDS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "quickstart.ipynb"  # copied by the `lab` fixture, outputs stripped
CHROMIUM = Path(os.environ.get("PCACHE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"
# Chromium's own background traffic is refused on a closed network; keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI containers run as root
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# With the server start-up (60 s at most), within the 300 s pytest-timeout.
KERNEL_TIMEOUT_MS = 90_000
RUN_TIMEOUT_MS = 120_000

# The widget panel (`CachePanel.add_class`), not the static `%claude_session show` tables above it.
PANEL = ".jp-OutputArea-output .widget-vbox.pcache-panel"
# Tracebacks and usage errors land in stderr outputs, like warnings; their text tells them apart.
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
FAILURE = re.compile(r"Traceback \(most recent call last\)|UsageError")


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (run `make chromium`)")
    return CHROMIUM


def _seconds(expires: str) -> int:
    """`expires in 4m 12s` or `expires in 1h 00m` as seconds (what `fmt.duration` writes)."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(part[:-1]) * units[part[-1]] for part in expires.removeprefix("expires in ").split())


def _screenshot(panel: Locator, path: Path) -> None:
    """The panel alone, with a white margin inside its own box (nothing around it is captured)."""
    panel.screenshot(path=path, animations="disabled", style=f"{PANEL} {{ padding: 10px; }}")


def test_quickstart_panel_in_jupyterlab(lab: str, chromium: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        # Should a dialog come up anyway (a kernel chooser), take its default.
        page.add_locator_handler(page.locator(".jp-Dialog"), lambda d: d.locator(".jp-mod-accept").click())
        try:
            page.goto(f"{lab}/lab/tree/{NOTEBOOK}")
            # The notebook gets the whole width: the calls table is wide.
            page.get_by_role("menuitem", name="View", exact=True).click()
            page.locator(".lm-Menu-item", has_text="Appearance").click()
            page.locator(".lm-Menu-item", has_text="Show Left Sidebar").click()
            expect(page.locator("#jp-left-stack")).to_be_hidden()
            kernel = page.get_by_title(f"Change kernel for {NOTEBOOK}")
            expect(kernel, "the python3 kernel did not start").to_have_text(
                re.compile(r"^Python 3 .*\| Idle$"), timeout=KERNEL_TIMEOUT_MS
            )
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

            panel = page.locator(PANEL)
            failed = page.locator(STDERR).filter(has_text=FAILURE)
            expect(panel.or_(failed).first, "the panel widget never rendered").to_be_visible(
                timeout=RUN_TIMEOUT_MS
            )
            if failed.count():
                pytest.fail(f"a quickstart cell failed:\n{failed.first.inner_text()[-3000:]}")
            expect(kernel).to_have_text(re.compile(r"\| Idle$"))

            # Blocks in request order, with their cache markers.
            expect(panel.locator(".pcache-mode")).to_have_attribute("data-mode", "offline")
            markers = panel.locator("tr.pcache-block .pcache-marker").all_inner_texts()
            assert {"5m", "1h"} & set(markers), f"no block carries a cache marker: {markers}"
            # Call 1 writes the prefix, call 2 reads it.
            first = panel.locator("tr.pcache-call[data-call='1'] .pcache-write")
            second = panel.locator("tr.pcache-call[data-call='2'] .pcache-read")
            assert int(first.get_attribute("data-tokens") or 0) > 0, first.inner_text()
            assert int(second.get_attribute("data-tokens") or 0) > 0, second.inner_text()
            expect(second).not_to_have_text("0")

            expires = panel.locator(".pcache-countdown tr.pcache-entry .pcache-expires")
            expect(expires.first).to_be_visible()
            _screenshot(panel, ARTIFACTS / "panel.png")
            if os.environ.get("PCACHE_SCREENSHOT") == "1":
                (ROOT / "docs").mkdir(exist_ok=True)
                shutil.copy(ARTIFACTS / "panel.png", ROOT / "docs" / "panel.png")

            # The emulator's clock stands still until "Advance 5 min" moves it.
            left = [_seconds(text) - ADVANCE_SECONDS for text in expires.all_inner_texts()]
            panel.locator("button.pcache-advance").click()
            expect(expires).to_have_text([f"expires in {duration(s, ceil=True)}" for s in left if s > 0])
            _screenshot(panel, ARTIFACTS / "panel-advanced.png")
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png", full_page=True)
            raise
        finally:
            browser.close()
