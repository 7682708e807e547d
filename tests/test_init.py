"""The package's public face: `pcache_magic.__all__`, its lazy table, and the layered tree."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import pcache_magic

PACKAGE = Path(pcache_magic.__file__).parent


def test_the_lazy_table_covers_all_and_names_only_real_objects() -> None:
    lazy = pcache_magic._LAZY
    assert set(pcache_magic.__all__) == {*lazy, "__version__"}
    for name, module in lazy.items():
        obj = getattr(importlib.import_module(module, "pcache_magic"), name)
        assert getattr(pcache_magic, name) is obj, name
    assert sorted(dir(pcache_magic)) == sorted(pcache_magic.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pcache_magic.nope  # type: ignore[attr-defined]


def test_importing_the_package_loads_neither_the_sdk_nor_the_widgets() -> None:
    heavy = "('anthropic', 'ipywidgets', 'IPython')"
    code = f"import sys, pcache_magic; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_public_surface_stays_where_it_was() -> None:
    from pcache_magic.autogen import CachingAnthropicChatCompletionClient
    from pcache_magic.emulator import Emulator, ManualClock
    from pcache_magic.integrations.autogen import CachingAnthropicChatCompletionClient as same

    assert CachingAnthropicChatCompletionClient is same
    assert Emulator.__module__.startswith("pcache_magic.emulator")
    assert ManualClock.__module__.startswith("pcache_magic.emulator")


def test_the_tree_is_the_layers() -> None:
    """No module directly under pcache_magic/ but __init__; none over 400 lines."""
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {
        "core",
        "analysis",
        "emulator",
        "session",
        "view",
        "ipython",
        "integrations",
        "autogen",
    }
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert long == {}


def test_no_import_circle_counting_type_checking_imports() -> None:
    """grimp (import-linter's graph) reads every import statement, `TYPE_CHECKING` blocks included."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("pcache_magic", cache_dir=None)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def cycle_from(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in edges[module]:
            if target.startswith(f"{module}.") or module == "pcache_magic":
                continue  # a package importing its own submodules is its re-export, not a circle
            if state.get(target) == 1:
                return [*path, module, target]
            if target not in state and (found := cycle_from(target, [*path, module])):
                return found
        state[module] = 2
        return None

    for module in modules:
        if module not in state:
            assert cycle_from(module, []) is None
