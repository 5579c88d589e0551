"""The model layer never imports trio (DESIGN §1): every module under ``trio_graph/_model/``,
and the public value modules it builds on, import with trio blocked.

``trio_graph/__init__.py`` re-exports the runtime (Executor), so the package itself needs
trio; the check therefore loads the model modules under a bare stand-in package that has
the real package directory as its path, in a fresh interpreter where ``import trio``
fails. The list is the folder, globbed: a new model module is checked without anyone
remembering to add it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import trio_graph

PKG = Path(trio_graph.__file__).parent
PUBLIC_VALUES = ["errors", "events", "reducers", "serde"]
MODEL = (
    sorted(f"_model.{p.stem}" for p in (PKG / "_model").glob("*.py") if p.stem != "__init__")
    + PUBLIC_VALUES
)

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


def check(names: list[str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(PKG), json.dumps(names)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def imports() -> dict[str, object]:
    return check(MODEL)


def test_the_model_folder_is_not_empty() -> None:
    """The glob finds the model modules (a moved folder would make the check vacuous)."""
    assert {"_model.graph", "_model.routing", "_model.state"} <= set(MODEL)


@pytest.mark.parametrize("name", MODEL)
def test_model_module_imports_without_trio(name: str, imports: dict[str, object]) -> None:
    """Each model module (and whatever it imports from the package) loads with trio blocked."""
    result = imports[name]
    assert isinstance(result, dict), f"trio_graph.{name} needs trio: {result}"
    loaded = set(result["ok"])
    outside = {m for m in loaded if m.startswith(("trio_graph._runtime", "trio_graph.stores"))}
    assert outside == set(), f"trio_graph.{name} imports a higher layer: {outside}"


def test_the_check_does_detect_trio() -> None:
    """Control: the same harness reports a runtime module (the loop) as needing trio."""
    assert "import of trio halted" in str(check(["_runtime.loop"])["_runtime.loop"])
