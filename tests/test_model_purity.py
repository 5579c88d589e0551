"""The model layer never imports trio (DESIGN §1): each model module imports with trio blocked.

``trio_graph/__init__.py`` re-exports the runtime (Executor), so the package itself needs
trio; the check therefore loads the model modules under a bare stand-in package that has
the real package directory as its path, in a fresh interpreter where ``import trio``
fails.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import trio_graph

PKG = Path(trio_graph.__file__).parent
MODEL = [
    "errors",
    "results",
    "decisions",
    "reducers",
    "state",
    "graph",
    "builder",
    "routing",
    "analysis",
    "mermaid",
    "events",
    "checkpoint",
    "serde",
]

CHECK = r"""
import importlib, json, sys, types
sys.modules["trio"] = None  # any `import trio` / `import trio.x` now raises ImportError
pkg_dir, names = sys.argv[1], json.loads(sys.argv[2])
results = {}
for name in names:
    for mod in [m for m in sys.modules if m == "trio_graph" or m.startswith("trio_graph.")]:
        del sys.modules[mod]
    stub = types.ModuleType("trio_graph")
    stub.__path__ = [pkg_dir]
    sys.modules["trio_graph"] = stub
    try:
        importlib.import_module("trio_graph." + name)
    except BaseException as exc:
        results[name] = f"{type(exc).__name__}: {exc}"
        continue
    loaded = sorted(m for m in sys.modules if m.startswith("trio_graph."))
    results[name] = {"ok": loaded}
print(json.dumps(results))
"""


def declared_model_modules() -> list[str]:
    """Modules whose docstring declares them part of the model layer (no trio import)."""
    found = []
    for path in sorted(PKG.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if "Model layer" in doc:
            found.append(path.stem)
    return found


@pytest.fixture(scope="module")
def imports() -> dict[str, object]:
    names = sorted(set(MODEL) | set(declared_model_modules()))
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(PKG), json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", MODEL)
def test_model_module_imports_without_trio(name: str, imports: dict[str, object]) -> None:
    """Each model module (and whatever it imports from the package) loads with trio blocked."""
    result = imports[name]
    assert isinstance(result, dict), f"trio_graph.{name} needs trio: {result}"
    runtime = {"trio_graph.loop", "trio_graph.fanout", "trio_graph.run", "trio_graph.executor"}
    assert not runtime & set(result["ok"])


def test_modules_declaring_model_layer_are_pure(imports: dict[str, object]) -> None:
    """Any module whose docstring says "Model layer" keeps that promise too."""
    declared = declared_model_modules()
    assert set(MODEL) <= set(declared), set(MODEL) - set(declared)
    impure = {n: imports[n] for n in declared if not isinstance(imports[n], dict)}
    assert impure == {}


def test_the_check_does_detect_trio() -> None:
    """Control: the same harness reports a runtime module (loop) as needing trio."""
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(PKG), json.dumps(["loop"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "import of trio halted" in json.loads(out.stdout)["loop"]
