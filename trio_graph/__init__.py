"""trio_graph: a graph workflow engine for Trio programs.

Nodes read a shared state and return updates merged by per-key reducers; a run
streams events, pauses at barriers for human decisions, fans out into parallel
branches, checkpoints to a store and resumes later. See DESIGN.md and README.md.
"""

from __future__ import annotations

from . import errors as errors
from . import events as events
from . import reducers as reducers
from .analysis import CycleInfo as CycleInfo
from .builder import GraphBuilder as GraphBuilder
from .checkpoint import AdaptivePolicy as AdaptivePolicy
from .checkpoint import Checkpoint as Checkpoint
from .checkpoint import CheckpointPolicy as CheckpointPolicy
from .checkpoint import RunStatus as RunStatus
from .decisions import Approve as Approve
from .decisions import BarrierId as BarrierId
from .decisions import Decision as Decision
from .decisions import Modify as Modify
from .decisions import Reject as Reject
from .decisions import Reroute as Reroute
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
from .errors import StateError as StateError
from .errors import StepsExceeded as StepsExceeded
from .errors import Unrouted as Unrouted
from .events import RunResult as RunResult
from .executor import Executor as Executor
from .graph import Graph as Graph
from .results import Fallback as Fallback
from .results import Goto as Goto
from .retry import RetryPolicy as RetryPolicy
from .run import Run as Run
from .state import StateDelta as StateDelta

__version__ = "0.1.0"
