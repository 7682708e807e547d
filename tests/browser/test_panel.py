"""The cache panel in a real JupyterLab 4 and Notebook 7, in Debian's chromium, driven by Playwright.

The `notebook` fixture (conftest.py) runs a copy of `quickstart.ipynb` offline in each
front-end; this test checks the `%claude_panel` widget in the DOM: the blocks with their cache
markers, the second call reading from cache, and the Advance button moving the countdown.
Screenshots of the panel go to `test-artifacts/` (and JupyterLab's to `docs/panel.png` with
`PCACHE_SCREENSHOT=1`, via `make screenshot`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from frontends import OpenNotebook
from playwright.sync_api import Locator, expect

from pcache_magic.core.fmt import duration
from pcache_magic.view.panel import ADVANCE_SECONDS

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# The widget panel (`CachePanel.add_class`), not the static `%claude_session show` tables above it.
PANEL = ".jp-OutputArea-output .widget-vbox.pcache-panel"


def _seconds(expires: str) -> int:
    """`expires in 4m 12s` or `expires in 1h 00m` as seconds (what `fmt.duration` writes)."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(part[:-1]) * units[part[-1]] for part in expires.removeprefix("expires in ").split())


def _screenshot(panel: Locator, path: Path) -> None:
    """The panel alone, with a margin inside its own box (nothing around it is captured)."""
    panel.screenshot(path=path, animations="disabled", style=f"{PANEL} {{ padding: 10px; }}")


def test_quickstart_panel(notebook: OpenNotebook) -> None:
    """Runs after test_outputs.py's views (file order): Advance moves the clock for good."""
    notebook.show("light", 1008)
    name = notebook.frontend.name
    panel = notebook.cell(notebook.cells.panel).locator(PANEL)
    expect(panel).to_be_visible()
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
    _screenshot(panel, ARTIFACTS / f"{name}-panel.png")
    if name == "jupyterlab" and os.environ.get("PCACHE_SCREENSHOT") == "1":
        shutil.copy(ARTIFACTS / f"{name}-panel.png", ROOT / "docs" / "panel.png")

    # The emulator's clock stands still until "Advance 5 min" moves it.
    left = [_seconds(text) - ADVANCE_SECONDS for text in expires.all_inner_texts()]
    panel.locator("button.pcache-advance").click()
    expect(expires).to_have_text([f"expires in {duration(s, ceil=True)}" for s in left if s > 0])
    _screenshot(panel, ARTIFACTS / f"{name}-panel-advanced.png")
