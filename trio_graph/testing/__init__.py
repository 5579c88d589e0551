"""A kit for fuzzing graph semantics: strategies, a reference interpreter, a harness.

Needs Hypothesis (the ``test`` extra). The pieces:

- :mod:`~trio_graph.testing.spec`: graphs as plain data (:class:`GraphSpec`) whose
  nodes follow scripted :class:`Behaviour` s, built into real graphs by
  :func:`build_graph`; :mod:`~trio_graph.testing.script`: the scripted person
  (:class:`DecisionScript`); :mod:`~trio_graph.testing.traces`: what a run did
  (:class:`Trace`, and :func:`summarize` for the facts most properties compare).
- :mod:`~trio_graph.testing.strategies` (with :mod:`~trio_graph.testing.values` for
  values, behaviours and :func:`conditions`): Hypothesis strategies for all of it,
  :func:`graph_and_state` for a graph and its state as two ``@given`` arguments,
  :func:`key_states` for states without a graph; :mod:`~trio_graph.testing.invalid`:
  :func:`invalid_graphs` that ``build()`` must reject.
- :mod:`~trio_graph.testing.reference`: :func:`interpret`, DESIGN's semantics as a
  small sequential program, with no Trio (its step rules, :func:`route_edges`
  among them, in :mod:`~trio_graph.testing.reference_rules`).
- :mod:`~trio_graph.testing.harness`: :func:`run_graph` runs the Trio executor the
  same way (MockClock, the same person), :func:`assert_same` compares the traces,
  :func:`check_event_contract` checks the event lifecycle.

See docs/semantics.md for the semantics and an example test to copy.
"""

from __future__ import annotations

from .harness import assert_same as assert_same
from .harness import check_event_contract as check_event_contract
from .harness import differences as differences
from .harness import drive as drive
from .harness import run_graph as run_graph
from .invalid import InvalidGraphCase as InvalidGraphCase
from .invalid import invalid_graphs as invalid_graphs
from .reference import Unsupported as Unsupported
from .reference import interpret as interpret
from .reference_rules import route_edges as route_edges
from .script import DecisionScript as DecisionScript
from .script import Send as Send
from .spec import BarrierSpec as BarrierSpec
from .spec import Behaviour as Behaviour
from .spec import BehaviourError as BehaviourError
from .spec import BranchSpec as BranchSpec
from .spec import Cond as Cond
from .spec import ConditionSpec as ConditionSpec
from .spec import EdgeSpec as EdgeSpec
from .spec import GraphSpec as GraphSpec
from .spec import MapSpec as MapSpec
from .spec import ParallelSpec as ParallelSpec
from .spec import TaskSpec as TaskSpec
from .spec import build_graph as build_graph
from .strategies import TASKS_AND_CONDITIONS as TASKS_AND_CONDITIONS
from .strategies import Scenario as Scenario
from .strategies import conditions as conditions
from .strategies import decision_scripts as decision_scripts
from .strategies import graph_and_state as graph_and_state
from .strategies import graphs as graphs
from .strategies import key_states as key_states
from .strategies import node_behaviours as node_behaviours
from .strategies import scenarios as scenarios
from .strategies import states as states
from .traces import ErrorInfo as ErrorInfo
from .traces import Trace as Trace
from .traces import TraceSummary as TraceSummary
from .traces import error_info as error_info
from .traces import summarize as summarize
