"""Loading the graph a ``module:attr`` spec names, or recognising the bundled demo."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from .._model.checkpoint import Checkpoint
from .._model.graph import Graph
from .usage import DEMO_GRAPH, UsageError


def load_graph(spec: str) -> Graph:
    """Import ``module:attr`` (attr may be dotted) and return the Graph it names.

    The attribute may also be a function of no arguments that returns a Graph.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"expected MODULE:ATTR (e.g. {DEMO_GRAPH}), got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: the current folder's modules
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:
        raise UsageError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no attribute {attr!r}") from None
    if not isinstance(obj, Graph) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise UsageError(f"{spec}() failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, Graph):
        raise UsageError(
            f"{spec} is a {type(obj).__name__}, not a trio_graph Graph "
            "(build one with GraphBuilder(...).build())"
        )
    return obj


def graph_for(spec: str | None, checkpoint: Checkpoint) -> Graph | None:
    """The graph named by ``--graph``; else the bundled demo if the run is one; else None."""
    if spec:
        return load_graph(spec)
    from .. import demo

    if checkpoint.graph_hash == demo.graph.hash():
        return demo.graph
    return None
