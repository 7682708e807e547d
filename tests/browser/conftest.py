"""Fixtures of the browser tests: Debian's chromium, one server per front-end, the notebook run once.

`notebook` is parametrized by front-end (JupyterLab 4, Notebook 7) at session scope, so pytest
runs every test of one front-end on one server, one page and one run of the notebook, then
stops that server before starting the next.  The browser is shared by both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from frontends import FRONTENDS, HEIGHT, MATH, RUN_TIMEOUT_MS, OpenNotebook, Server
from playwright.sync_api import Browser, expect, sync_playwright

CHROMIUM = Path(os.environ.get("PCACHE_CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
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
# Tracebacks and usage errors land in stderr outputs, like warnings; their text tells them apart.
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
FAILURE = re.compile(r"Traceback \(most recent call last\)|UsageError")


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing (run `make chromium`)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session", params=list(FRONTENDS))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    frontend = FRONTENDS[request.param]
    server = Server(frontend, tmp_path_factory.mktemp(frontend.name))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def notebook(server: Server, browser: Browser) -> Iterator[OpenNotebook]:
    """The notebook open in this front-end, every cell run without error, MathJax done with it."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1008, "height": HEIGHT})
    page = context.new_page()
    page.set_default_timeout(60_000)
    opened = OpenNotebook(page, server)
    try:
        opened.open()
        ran = opened.run_all()
        failed = page.locator(STDERR).filter(has_text=FAILURE)
        if failed.count():
            text = failed.first.text_content() or ""
            pytest.fail(f"a notebook cell failed in {server.frontend.label}:\n{text[-3000:]}")
        if ran["ok"] is not True or None in ran["counts"]:
            pytest.fail(f"Run All did not run every cell in {server.frontend.label}: {ran}")
        # MathJax typesets outputs in the order they render: once the last cell's control is
        # typeset, every output above it has had its turn.
        control = opened.outputs(opened.cells.control)
        expect(control, "the control cell shows a Markdown and an HTML output").to_have_count(2)
        for i in range(2):
            expect(control.nth(i).locator(MATH).first, "MathJax never typeset the control").to_be_attached(
                timeout=RUN_TIMEOUT_MS
            )
        yield opened
    except (Exception, pytest.fail.Exception):
        page.screenshot(path=ARTIFACTS / f"{server.frontend.name}-failure.png")
        raise
    finally:
        context.close()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests last: their servers, kernels and browser (session-scoped, so shared by
    both files) then end with the run instead of idling through the rest of the suite."""
    browser = [item for item in items if item.get_closest_marker("browser")]
    if browser:
        items[:] = [item for item in items if not item.get_closest_marker("browser")] + browser


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """When the set-up or the page fails (not a check's assertion), the server's log tail goes
    into the report: a kernel that died or a cell that failed shows there."""
    report = yield
    server = getattr(item, "funcargs", {}).get("server")  # the fixture's value, once set up
    check = call.excinfo is not None and call.excinfo.errisinstance(AssertionError) and call.when == "call"
    if report.failed and not check and isinstance(server, Server):
        report.sections.append((f"{server.frontend.label} server log (tail)", server.tail()))
    return report
