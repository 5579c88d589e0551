"""trio_graph: a graph workflow engine for Trio programs.

Nodes read a shared state and return updates merged by per-key reducers; a run
streams events, pauses at barriers for human decisions, fans out into parallel
branches, checkpoints to a store and resumes later. See DESIGN.md and README.md.
"""

from __future__ import annotations

from . import errors as errors
from . import events as events
from . import reducers as reducers
from ._model.analysis import CycleInfo as CycleInfo
from ._model.builder import GraphBuilder as GraphBuilder
from ._model.checkpoint import AdaptivePolicy as AdaptivePolicy
from ._model.checkpoint import Checkpoint as Checkpoint
from ._model.checkpoint import CheckpointPolicy as CheckpointPolicy
from ._model.checkpoint import RunStatus as RunStatus
from ._model.decisions import Approve as Approve
from ._model.decisions import BarrierId as BarrierId
from ._model.decisions import Decision as Decision
from ._model.decisions import Modify as Modify
from ._model.decisions import Reject as Reject
from ._model.decisions import Reroute as Reroute
from ._model.graph import Graph as Graph
from ._model.results import Fallback as Fallback
from ._model.results import Goto as Goto
from ._model.retry import RetryPolicy as RetryPolicy
from ._model.state import StateDelta as StateDelta
from ._runtime.context import NodeContext as NodeContext
from ._runtime.executor import Executor as Executor
from ._runtime.guest import asyncio_run as asyncio_run
from ._runtime.run import Run as Run
from .errors import BarrierError as BarrierError
from .errors import Cancelled as Cancelled
from .errors import CheckpointError as CheckpointError
from .errors import GraphChanged as GraphChanged
from .errors import GraphError as GraphError
from .errors import InvalidGraph as InvalidGraph
from .errors import LeaseLost as LeaseLost
from .errors import MissingEdge as MissingEdge
from .errors import NodeExecutionFailed as NodeExecutionFailed
from .errors import NodeNotFound as NodeNotFound
from .errors import NodeTimeout as NodeTimeout
from .errors import ResourceError as ResourceError
from .errors import RunTimeout as RunTimeout
from .errors import StateError as StateError
from .errors import StepsExceeded as StepsExceeded
from .errors import TrioRequired as TrioRequired
from .errors import Unrouted as Unrouted
from .events import RunResult as RunResult

__version__ = "0.1.0"
