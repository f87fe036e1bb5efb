"""The house rules of the import graph, checked by reading the source (no module is imported).

Layers, bottom to top: ``interp`` (the core) <- ``circuits`` (the analyzers) <- ``interp/cli/``
(the commands, the demo). So:

(a) no import cycle among the modules of ``interp`` and ``circuits``, counting imports inside
    functions as well as at module top (a function-level import only hides a cycle);
(b) no module of ``interp`` outside ``interp/cli/`` imports ``circuits``;
(c) no module of ``circuits`` imports ``interp.cli``;
(d) no file in ``interp/`` or ``circuits/`` is over 500 lines;
(e) an import inside a function says why it is not at the top of its module: a comment on its
    first line or on the line above (``# lazy: captum is slow to import``); a bare ``# noqa``
    is no reason. The top of the module is the default, so the import graph stays in view.

An edge ``a -> b`` is an ``import`` or ``from ... import`` statement in module ``a`` that names
module ``b`` (``from pkg import name`` names ``pkg.name`` when that is a module, else ``pkg``).
Importing ``pkg.mod`` also runs ``pkg/__init__.py``, but that implicit edge is not counted:
every submodule would otherwise form a cycle with its own package. Imports under
``if TYPE_CHECKING:`` never run and are not counted.

The small tests at the end run each check on a synthetic graph or tree, so each can be seen to
fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("interp", "circuits")
MAX_LINES = 500


# --------------------------------------------------------------------------- reading the tree


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """``{dotted module name: file}`` for every ``.py`` file of ``packages`` under ``root``."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every import statement of ``tree`` (any depth), except under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = (
            node.orelse
            if isinstance(node, ast.If) and _is_type_checking(node)
            else (ast.iter_child_nodes(node))
        )
        stack.extend(children)


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import reads from (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    package = parts if is_package else parts[:-1]
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join(anchor + ([node.module] if node.module else []))


def _known(name: str, modules) -> str | None:
    """``name`` or its nearest ancestor that is a module of the tree (None when outside it)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, source: str, modules, is_package: bool = False) -> set[str]:
    """The modules of ``modules`` that ``source`` (the text of ``module``) imports."""
    out = set()
    for node in _import_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = _base(module, is_package, node)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names
            ]
        out |= {k for k in (_known(n, modules) for n in names) if k is not None and k != module}
    return out


def import_graph(root: Path = ROOT, packages=PACKAGES) -> dict[str, set[str]]:
    """``{module: modules it imports}`` over ``packages`` under ``root``."""
    files = module_files(root, packages)
    return {
        m: imports_of(m, f.read_text(encoding="utf-8"), files, f.name == "__init__.py")
        for m, f in files.items()
    }


# --------------------------------------------------------------------------- the checks


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]`` of ``graph``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def upward_imports(
    graph, lower: str, upper: str, exempt: str | None = None
) -> list[tuple[str, str]]:
    """``(importer, imported)`` pairs where a module of ``lower`` (outside ``exempt``) imports
    one of ``upper``."""
    return sorted(
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if _inside(a, lower) and not (exempt and _inside(a, exempt)) and _inside(b, upper)
    )


def long_files(root: Path = ROOT, packages=PACKAGES, limit: int = MAX_LINES) -> list[str]:
    """``"path (N lines)"`` for each ``.py`` file of ``packages`` longer than ``limit`` lines."""
    out = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > limit:
                out.append(f"{path.relative_to(root)} ({n} lines)")
    return out


def _reason(line: str) -> str:
    """The comment text of a source line, without ``noqa`` / ``type: ignore`` directives."""
    if "#" not in line:
        return ""
    comment = line.split("#", 1)[1].strip()
    comment = re.sub(
        r"^(noqa(:\s*[A-Z]+[0-9]+(,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(\[.*?\])?)", "", comment
    )
    return comment.strip(" -()")


def unexplained_lazy_imports(root: Path = ROOT, packages=PACKAGES) -> list[str]:
    """``"path:line"`` of each import inside a function with no reason given beside it."""
    out = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            tree = ast.parse("\n".join(lines))
            found = {
                node.lineno
                for fn in ast.walk(tree)
                if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                for node in ast.walk(fn)
                if isinstance(node, (ast.Import, ast.ImportFrom))
            }
            for n in sorted(found):
                above = lines[n - 2].strip() if n >= 2 else ""
                told = _reason(lines[n - 1]) or (above.startswith("#") and _reason(above))
                if not told:
                    out.append(f"{path.relative_to(root)}:{n}")
    return out


# --------------------------------------------------------------------------- the real tree

GRAPH = import_graph()
LONG = long_files()


def without(graph: dict[str, set[str]], edges) -> dict[str, set[str]]:
    """A copy of ``graph`` without ``edges`` (pairs ``(importer, imported)``)."""
    return {a: {b for b in targets if (a, b) not in edges} for a, targets in graph.items()}


def test_the_graph_is_read():
    assert "interp.zoo.train" in GRAPH and "interp.zoo.shelf" in GRAPH["interp.zoo.train"]
    assert "interp.results.scores" in GRAPH["interp.results"]


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_core_never_imports_the_analyzers():
    assert upward_imports(GRAPH, "interp", "circuits", exempt="interp.cli") == []


def test_analyzers_never_import_the_cli():
    assert upward_imports(GRAPH, "circuits", "interp.cli") == []


def test_no_file_over_500_lines():
    assert LONG == [], "files over 500 lines: " + ", ".join(LONG)


def test_every_import_inside_a_function_says_why():
    unexplained = unexplained_lazy_imports()
    assert unexplained == [], (
        "imports inside functions with no reason given (move them to the top of the module, or "
        "say why they are lazy in a comment on the line): " + ", ".join(unexplained)
    )


# --------------------------------------------------------------------------- each check can fail


def test_find_cycle_on_synthetic_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y"}}) == ["y", "y"]
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None  # a diamond
    assert find_cycle(without({"a": {"b"}, "b": {"a"}}, {("b", "a")})) is None


def test_upward_imports_on_a_synthetic_graph():
    graph = {
        "interp.models": {"interp.heads"},
        "interp.atlas": {"circuits.induction"},
        "interp.cli.demo": {"circuits"},
        "circuits.retrieval": {"interp.cli.app", "interp"},
    }
    assert upward_imports(graph, "interp", "circuits", exempt="interp.cli") == [
        ("interp.atlas", "circuits.induction")
    ]
    assert upward_imports(graph, "circuits", "interp.cli") == [
        ("circuits.retrieval", "interp.cli.app")
    ]
    assert (
        upward_imports({"interpx.a": {"circuits"}}, "interp", "circuits") == []
    )  # a prefix is no package


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_imports_inside_functions_and_relative_imports_are_edges(tmp_path):
    _write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "from .a import f\n",
            "pkg/a.py": "def f():\n    from . import b\n    return b\n",
            "pkg/b.py": "import json\nfrom pkg.sub import c as _c\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/c.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n"
                "else:\n    from .. import b\n"
            ),
        },
    )
    graph = import_graph(tmp_path, ("pkg",))
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.sub.c"},
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg.b"},
    }
    assert find_cycle(graph) == ["pkg.b", "pkg.sub.c", "pkg.b"]


def test_long_files_on_a_synthetic_tree(tmp_path):
    _write_tree(tmp_path, {"pkg/short.py": "x = 1\n" * 3, "pkg/long.py": "x = 1\n" * 4})
    assert long_files(tmp_path, ("pkg",), limit=3) == ["pkg/long.py (4 lines)"]


def test_unexplained_lazy_imports_on_a_synthetic_tree(tmp_path):
    _write_tree(
        tmp_path,
        {
            "pkg/m.py": (
                "import json\n"
                "def bare():\n    import os\n"
                "def noqa_only():\n    import re  # noqa: PLC0415\n"
                "def told():\n    import csv  # lazy: only this reads csv\n"
                "def told_above():\n    # lazy: slow to import\n    import math\n"
                "class C:\n    def method(self):\n        from . import m\n"
            ),
        },
    )
    assert unexplained_lazy_imports(tmp_path, ("pkg",)) == [
        "pkg/m.py:3",
        "pkg/m.py:5",
        "pkg/m.py:13",
    ]
