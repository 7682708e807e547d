"""JupyterLab 4 and Notebook 7 for the browser tests: a throw-away server, the notebook, a page.

One server per front-end, isolated from the user's Jupyter set-up (temporary root, config,
data, runtime, settings and workspace dirs; no token; offline).  The notebook is the
quickstart without its stored outputs, plus `%claude_cost`, `%claude_explain` and a MathJax
control cell at the end: MathJax must typeset the control, or the "no MathJax in our outputs"
check would prove nothing.  The page runs it once; `show` then switches theme and width in place, so
every (theme, width) view is checked on the same outputs without running them again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

__all__ = [
    "FRONTENDS",
    "HEIGHT",
    "MATH",
    "THEMES",
    "Cells",
    "Frontend",
    "OpenNotebook",
    "Server",
    "write_notebook",
]

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "quickstart.ipynb"
START_TIMEOUT_S = 60.0
KERNEL_TIMEOUT_MS = 90_000
RUN_TIMEOUT_MS = 150_000
# Never the live API: no key, no external emulator, the packaged model table.
DROPPED_ENV = ("ANTHROPIC_API_KEY", "PCACHE_EMULATOR_URL", "PCACHE_MODELS")
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}
MATH = "mjx-container, .MathJax"  # what MathJax 3 (and 2) leave where it typeset math
HEIGHT = 900
#: The control cell: what the project's outputs must never look like once rendered.
CONTROL = (
    "# Browser-test control: two $ signs in Markdown and in HTML, which MathJax typesets.\n"
    "from IPython.display import HTML, Markdown, display\n\n"
    'display(Markdown("control: $x$ and $y$"), HTML("control: $a$ and $b$"))'
)


@dataclass(frozen=True)
class Frontend:
    """How to serve a front-end and where it opens a notebook."""

    name: str
    label: str
    module: str  # python -m MODULE starts its server
    path: str  # URL path of a notebook, before its name
    options: tuple[str, ...]


FRONTENDS = {
    "jupyterlab": Frontend(
        "jupyterlab",
        "JupyterLab 4",
        "jupyterlab",
        "/lab/tree/",
        (
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: commands, shell, kernel state
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ),
    ),
    "notebook7": Frontend(
        "notebook7",
        "Notebook 7",
        "notebook",
        "/notebooks/",
        ("--JupyterNotebookApp.expose_app_in_browser=True",),
    ),
}


@dataclass(frozen=True)
class Cells:
    """Indices (in notebook order) of the cells whose outputs the tests read."""

    total: int
    project: tuple[int, ...]  # every magic cell: all their outputs are the project's
    calls: tuple[int, ...]  # `%%claude` cells: the reply and its usage line
    session: int  # `%claude_session show`: the panel's tables as static HTML
    panel: int  # `%claude_panel`: the widget
    cost: int  # `%claude_cost`
    control: int


def write_notebook(root: Path) -> Cells:
    """The quickstart, outputs stripped (only this run's can match), plus `%claude_cost`,
    `%claude_explain` and the control; its data files beside it.  Returns where the cells are."""
    notebook = json.loads((ROOT / "notebooks" / NOTEBOOK).read_text())
    notebook["metadata"].pop("widgets", None)
    extra = (("cost", "%claude_cost"), ("explain", "%claude_explain"), ("mathjax-control", CONTROL))
    for name, source in extra:
        cell = {"cell_type": "code", "id": f"browser-test-{name}", "metadata": {}, "source": source}
        notebook["cells"].append(cell)
    sources: list[str] = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        text = cell["source"]
        sources.append(text if isinstance(text, str) else "".join(text))
    (root / NOTEBOOK).write_text(json.dumps(notebook, indent=1))
    shutil.copytree(ROOT / "notebooks" / "data", root / "data")

    code = [i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code"]

    def first(line: str) -> int:
        found = [i for i in code if sources[i].strip().split("\n")[0].strip() == line]
        if len(found) != 1:
            raise LookupError(f"{NOTEBOOK}: expected one cell `{line}`, found {len(found)}")
        return found[0]

    calls = tuple(i for i in code if sources[i].split("\n")[0].strip() == "%%claude")
    if not calls:
        raise LookupError(f"{NOTEBOOK} has no %%claude cell")
    return Cells(
        total=len(notebook["cells"]),
        project=tuple(i for i in code if sources[i].lstrip().startswith("%")),
        calls=calls,
        session=first("%claude_session show"),
        panel=first("%claude_panel"),
        cost=first("%claude_cost"),
        control=len(notebook["cells"]) - 1,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One front-end's Jupyter server on a free loopback port, with its own dirs; `stop` ends it."""

    frontend: Frontend
    base: Path
    url: str = ""
    cells: Cells | None = None
    log: Path = field(init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.log = self.base / "server.log"

    def start(self) -> None:
        dirs = {name: self.base / name for name in ("root", "config", "data", "runtime", "settings", "work")}
        for path in dirs.values():
            path.mkdir()
        self.cells = write_notebook(dirs["root"])
        labconfig = dirs["config"] / "labconfig"
        labconfig.mkdir()
        # No announcements plug-in: no "news" notification over the notebook.
        disabled = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
        (labconfig / "page_config.json").write_text(json.dumps(disabled))
        env = {key: value for key, value in os.environ.items() if key not in DROPPED_ENV}
        env.update(
            PCACHE_OFFLINE="1",
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["work"]),
            IPYTHONDIR=str(self.base / "ipython"),
        )
        port = _free_port()
        command = [
            sys.executable, "-m", self.frontend.module, "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            "--IdentityProvider.token=", f"--ServerApp.root_dir={dirs['root']}",
            "--ServerApp.allow_root=True",  # CI containers run as root
            *self.frontend.options,
        ]  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=dirs["root"],
                start_new_session=True,
            )
        self._wait_until_up()

    def _wait_until_up(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"{self.frontend.label} exited on start-up with code {self._process.returncode}:\n"
                    + self.tail()
                )
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        raise TimeoutError(
            f"{self.frontend.label} did not answer within {START_TIMEOUT_S:.0f} s:\n{self.tail()}"
        )

    def tail(self, lines: int = 60) -> str:
        """The end of the server's (and its kernels') stdout and stderr."""
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (the server then shuts its kernels down), else SIGKILL to its process group."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session): kernels too
            process.wait(timeout=10)


# The notebook panel the page shows, and its kernel, through the app that `expose_app_in_browser` exposes.
_PANEL_JS = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
_KERNEL_READY_JS = f"""() => {{
    const panel = {_PANEL_JS};
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle'
        && panel.content.widgets.length > 0;
}}"""
# Every cell, in order; resolves to whether all of them ran (or "timed out"), and each code cell's
# execution count (null: not run).
_RUN_ALL_JS = f"""async (timeout) => {{
    const app = window.jupyterapp, panel = {_PANEL_JS};
    await panel.context.ready;
    await panel.sessionContext.ready;
    const ok = await Promise.race([
        app.commands.execute('notebook:run-all-cells'),
        new Promise(resolve => setTimeout(() => resolve('timed out'), timeout)),
    ]);
    const counts = panel.content.widgets.map(c => c.model.type === 'code' ? c.model.executionCount : -1);
    return {{ok, counts}};
}}"""
_THEME_JS = """([name, light]) => document.body.dataset.jpThemeName === name
    && document.body.dataset.jpThemeLight === String(light)"""
# The notebook fits the new viewport and two frames have been drawn since (Lumino lays out on a frame).
_SETTLED_JS = """(width) => new Promise(resolve => {
    const fits = () => {
        const panel = document.querySelector('.jp-NotebookPanel');
        return window.innerWidth === width && panel && panel.getBoundingClientRect().right <= width;
    };
    const check = () => fits() ? requestAnimationFrame(() => requestAnimationFrame(() => resolve(true)))
                               : requestAnimationFrame(check);
    check();
})"""

# Chromium renders a cell scrolled into view (content-visibility: auto) a frame or more later.
_RENDERED_JS = """(cell) => new Promise(resolve => {
    let frames = 0;
    const check = () => {
        const input = cell.querySelector('.jp-Cell-inputWrapper') || cell;
        const rendered = input.checkVisibility({contentVisibilityAuto: true});
        if ((rendered && frames >= 2) || frames > 300) resolve(rendered);
        else { frames += 1; requestAnimationFrame(check); }
    };
    check();
})"""


class OpenNotebook:
    """The test notebook open in one front-end, run once; `show` re-views it in a theme and width."""

    def __init__(self, page: Page, server: Server) -> None:
        assert server.cells is not None, "start the server first"
        self.page = page
        self.frontend = server.frontend
        self.cells = server.cells
        self.url = f"{server.url}{server.frontend.path}{NOTEBOOK}"
        self.view: tuple[str, int] | None = None
        self.screenshots: set[str] = set()  # the views already captured

    def open(self) -> None:
        """Load the page and wait for its kernel; in JupyterLab, collapse the left sidebar so the
        notebook has the width, as a user reading a wide table would."""
        page = self.page
        # Should a dialog come up anyway (a kernel chooser), take its default.
        page.add_locator_handler(page.locator(".jp-Dialog"), lambda d: d.locator(".jp-mod-accept").click())
        page.goto(self.url)
        page.wait_for_function(_KERNEL_READY_JS, timeout=KERNEL_TIMEOUT_MS)
        if self.frontend.name == "jupyterlab":
            page.evaluate(
                "() => window.jupyterapp.shell.leftCollapsed"
                " || window.jupyterapp.commands.execute('application:toggle-left-area')"
            )
            page.wait_for_function("() => window.jupyterapp.shell.leftCollapsed")
        # A front-end that defers rendering (Notebook 7's windowing) adds cells while idle: wait.
        total, cells = self.cells.total, page.locator(".jp-Notebook .jp-Cell")
        try:
            page.wait_for_function(
                f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === {total}",
                timeout=KERNEL_TIMEOUT_MS,
            )
        except PlaywrightTimeoutError:
            raise AssertionError(f"{cells.count()} cells in the DOM, {total} in {NOTEBOOK}") from None

    def run_all(self) -> dict[str, Any]:
        """Run every cell (the app's own Run All command) and return what it reported."""
        result: dict[str, Any] = self.page.evaluate(_RUN_ALL_JS, RUN_TIMEOUT_MS)
        return result

    def show(self, theme: str, width: int) -> None:
        """Switch the theme (the app's `apputils:change-theme`, what Settings > Theme does) and
        resize the viewport; return once both have taken effect and the layout has settled."""
        page = self.page
        name = THEMES[theme]
        if page.evaluate("() => document.body.dataset.jpThemeName") != name:
            page.evaluate(
                "(theme) => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", name
            )
        page.wait_for_function(_THEME_JS, arg=[name, theme == "light"])
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.wait_for_function(_SETTLED_JS, arg=width)
        self.view = (theme, width)

    def cell(self, index: int) -> Locator:
        """The cell at `index` (notebook order), scrolled into view: off-screen cells are not
        rendered (content-visibility), and their text reads as empty."""
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(index)
        cell.scroll_into_view_if_needed()
        if not cell.evaluate(_RENDERED_JS):
            raise AssertionError(f"cell {index} scrolled into view but is still not rendered")
        return cell

    def outputs(self, index: int) -> Locator:
        return self.cell(index).locator(".jp-OutputArea-output")
