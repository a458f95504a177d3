"""The import graph of ``service/``: no circles, and every import points down the layers.

The layers are declared once, in ``pyproject.toml`` (``[tool.importlinter]``), and checked
with import-linter; circles are found here on grimp's graph (the one import-linter builds),
function-level imports included. Both checks are also run on a small package built in the
test with a known circle and a known upward import, so a checker that found nothing
because it looked at nothing would fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]


def import_cycles(package: str) -> list[list[str]]:
    """Every strongly connected set of two or more modules of ``package`` (Tarjan), sorted."""
    graph = grimp.build_graph(package, cache_dir=None)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative: the recursion depth would follow the longest import chain.
        work: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for module in edges:
        if module not in index:
            visit(module)
    return sorted(found)


def lint_imports(config: Path, cwd: Path) -> int:
    """``lint-imports --config CONFIG`` in a child process (it reconfigures logging); its exit code."""
    command = [str(Path(sys.executable).parent / "lint-imports"), "--config", str(config), "--no-cache"]
    return subprocess.run(command, cwd=cwd, capture_output=True, timeout=120).returncode


def test_service_has_no_import_cycles() -> None:
    assert import_cycles("service") == []


def test_service_imports_follow_the_layers() -> None:
    assert lint_imports(ROOT / "pyproject.toml", ROOT) == 0


@pytest.fixture
def toy_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``toy``: ``low`` imports ``high`` (upward), and ``a`` ↔ ``b`` import each other lazily."""
    pkg = tmp_path / "toy"
    pkg.mkdir()
    files = {
        "__init__.py": "",
        "high.py": "from toy import low\n",
        "low.py": "def f():\n    from toy import high\n    return high\n",
        "a.py": "from toy import b\n",
        "b.py": "def g():\n    from toy import a\n    return a\n",
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    config = tmp_path / "toy.toml"
    config.write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_package = "toy"

            [[tool.importlinter.contracts]]
            name = "toy layers"
            type = "layers"
            layers = ["toy.high", "toy.low"]
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield config
    for name in [m for m in sys.modules if m == "toy" or m.startswith("toy.")]:
        del sys.modules[name]


def test_the_checks_see_a_circle_and_an_upward_import(toy_package: Path) -> None:
    assert import_cycles("toy") == [["toy.a", "toy.b"], ["toy.high", "toy.low"]]
    assert lint_imports(toy_package, toy_package.parent) == 1
