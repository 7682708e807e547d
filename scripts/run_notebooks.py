"""Re-execute the notebooks offline and store their outputs, ready for nbval.

The notebooks are documentation and tests at once: their stored outputs are
what nbval compares against on every `make test`.  This script runs each one
on a fresh in-process emulator (PCACHE_OFFLINE=1, its clock standing still) and makes the
stored outputs stable: widget model ids become sequential, widget state and
execution timings are dropped, so a re-run changes nothing unless behaviour did.

    python scripts/run_notebooks.py [notebooks/NAME.ipynb ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _stabilise(nb: Any) -> None:
    """Sequential widget ids, no widget state or timing metadata: outputs diff cleanly."""
    nb.metadata.pop("widgets", None)
    counter = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is not None:
                counter += 1
                view["model_id"] = f"pcache-widget-{counter}"


def run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    _stabilise(nb)
    nbformat.write(nb, path)
    print(f"ran {path.relative_to(ROOT)}")


def main(argv: list[str]) -> int:
    os.environ["PCACHE_OFFLINE"] = "1"
    os.environ.pop("ANTHROPIC_API_KEY", None)
    os.environ.pop("PCACHE_EMULATOR_URL", None)  # a shared server's clock and cache are not fresh
    paths = [Path(a).resolve() for a in argv] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for path in paths:
        run(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
