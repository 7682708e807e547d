"""A throw-away JupyterLab server for the browser test, isolated from the user's Jupyter set-up."""

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
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = "quickstart.ipynb"
START_TIMEOUT = 60.0
# Never the live API: no key, no external emulator, the packaged model table.
DROPPED_ENV = ("ANTHROPIC_API_KEY", "PCACHE_EMULATOR_URL", "PCACHE_MODELS")


#: Each running server's log, by URL: the report hook below shows its tail on a failure.
LOGS: dict[str, Path] = {}


def log_tail(url: str, lines: int = 60) -> str:
    """The end of the server's (and its kernels') stdout and stderr."""
    log = LOGS.get(url)
    text = log.read_text(errors="replace") if log is not None and log.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _copy_notebook(root: Path) -> None:
    """The quickstart without its stored outputs (so only this run's can match) and its data files."""
    notebook = json.loads((ROOT / "notebooks" / NOTEBOOK).read_text())
    notebook["metadata"].pop("widgets", None)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (root / NOTEBOOK).write_text(json.dumps(notebook, indent=1))
    shutil.copytree(ROOT / "notebooks" / "data", root / "data")


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited on start-up with code {process.returncode}:\n{log_tail(url)}"
            )
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {START_TIMEOUT:.0f} s:\n{log_tail(url)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the server then shuts its kernels down), else SIGKILL to its process group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own group (start_new_session): kernels too
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of JupyterLab on a free loopback port: no token, a temporary root and Jupyter dirs, offline."""
    base = tmp_path_factory.mktemp("jupyterlab")
    dirs = {name: base / name for name in ("root", "config", "data", "runtime", "settings", "workspaces")}
    for path in dirs.values():
        path.mkdir()
    _copy_notebook(dirs["root"])
    # No announcements plug-in: no "news" notification over the notebook.
    (dirs["config"] / "labconfig").mkdir()
    disabled = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
    (dirs["config"] / "labconfig" / "page_config.json").write_text(json.dumps(disabled))
    env = {key: value for key, value in os.environ.items() if key not in DROPPED_ENV}
    env.update(
        PCACHE_OFFLINE="1",
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        IPYTHONDIR=str(base / "ipython"),
    )
    port = _free_port()
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", f"--ServerApp.root_dir={dirs['root']}",
        "--ServerApp.allow_root=True",  # CI containers run as root
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    LOGS[url] = base / "jupyterlab.log"
    with LOGS[url].open("wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=dirs["root"], start_new_session=True
        )
        try:
            _wait_until_up(url, process)
            yield url
        finally:
            _stop(process)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, the JupyterLab log tail goes into the report next to the assertion."""
    report = yield
    url = getattr(item, "funcargs", {}).get("lab")
    if report.failed and url in LOGS:
        report.sections.append(("JupyterLab log (tail)", log_tail(url)))
    return report
