"""The inspector's pure parts and its event loop: the SVG drawing, the timeline, the marks,
the form reader, and the live stream's pace (virtual time)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import trio

from trio_graph import Approve, BarrierId, Checkpoint, Modify, Reject, Reroute
from trio_graph._model.checkpoint import BranchResult, RunStatus
from trio_graph.demo import graph as demo_graph
from trio_graph.ui import drawing, live, timeline
from trio_graph.ui.controls import FormError, decision_from, form_fields
from trio_graph.ui.layout import age


def cp(step: int, node: str | None, state: dict[str, Any], at: float, **kw: Any) -> Checkpoint:
    return Checkpoint(
        f"c{step}{node}", "t", "demo", demo_graph.hash(), node, step, state, created_at=at, **kw
    )


def test_layers_follow_the_distance_from_the_start() -> None:
    """A node's layer is its BFS distance from the start; a node no edge reaches goes
    below the rest."""
    sketch = drawing.Sketch(
        (("a", "task"), ("b", "task"), ("c", "task"), ("lost", "task")),
        (("a", "b", "normal"), ("b", "c", "normal"), ("c", "a", "conditional")),
        "a",
        "c",
    )
    assert drawing.layers(sketch) == {"a": 0, "b": 1, "c": 2, "lost": 3}


def test_the_demo_drawing_marks_and_escapes() -> None:
    """The demo graph draws every node and edge; marks become classes and words; a node
    name with markup is escaped."""
    svg = drawing.draw(
        drawing.sketch_of(demo_graph), {"review": "waiting", "draft": "visited"}, title="a <b> & c"
    )
    assert svg.count('<g class="node') == len(demo_graph.nodes)
    assert svg.count('<path class="edge') == len(demo_graph.edges)
    assert "kind-barrier mark-waiting terminal" not in svg
    assert 'class="node kind-barrier mark-waiting" data-node="review"' in svg
    assert "review (barrier, waiting)" in svg and "a &lt;b&gt; &amp; c" in svg
    odd = drawing.draw(drawing.Sketch((("<x>", "task"),), ()), {}, title="t")
    assert "&lt;x&gt;" in odd and "<x>" not in odd


def test_a_sketch_from_visits_joins_the_nodes_in_order() -> None:
    """Without the graph, the nodes the checkpoints show are joined in the order seen."""
    cps = [cp(1, "a", {}, 0), cp(2, "b", {}, 1), cp(3, "a", {}, 2), cp(4, None, {}, 3)]
    assert timeline.visited(cps) == ["a", "b"]
    assert timeline.transitions(cps) == [("a", "b"), ("b", "a")]
    sketch = drawing.sketch_from_visits(timeline.visited(cps), timeline.transitions(cps))
    assert sketch.start == "a" and [n for n, _ in sketch.nodes] == ["a", "b"]


def test_the_timeline_names_steps_durations_keys_and_branches() -> None:
    """One entry per checkpoint: the node it went on from, steps and time since the
    previous one, the keys changed, and a fan-out's finished branches out of its total."""
    cps = [
        cp(3, "score", {"round": 1}, 10.0, branches=[BranchResult("facts", {})]),
        cp(
            5,
            "review",
            {"round": 2, "text": "x"},
            10.25,
            status=RunStatus.WAITING,
            pending_barrier=BarrierId("review", 1),
        ),
    ]
    first, second = timeline.entries(cps, demo_graph)
    assert (first.from_node, first.steps, first.duration) == ("research", 3, None)
    assert first.changed_keys == ["round"] and first.branches == "1/2 done: facts"
    assert (second.from_node, second.steps, second.duration) == ("score", 2, 0.25)
    assert second.changed_keys == ["text", "round"] and second.branches == ""
    assert timeline.node_marks(cps, demo_graph) == {"score": "visited", "review": "waiting"}
    assert timeline.entries(cps)[0].from_node is None


@pytest.mark.parametrize(
    ("status", "mark"),
    [
        (RunStatus.RUNNING, "current"),
        (RunStatus.FAILED, "failed"),
        (RunStatus.CANCELLED, "current"),
    ],
)
def test_the_last_checkpoint_marks_where_the_run_is(status: RunStatus, mark: str) -> None:
    """The latest checkpoint's next node is current (failed when the run failed); a
    completed run has visited the end node."""
    cps = [cp(1, "draft", {}, 0), cp(2, "score", {}, 1, status=status)]
    assert timeline.node_marks(cps) == {"draft": "visited", "score": mark}
    done = [cp(1, "draft", {}, 0), cp(2, None, {}, 1, status=RunStatus.COMPLETED)]
    assert timeline.node_marks(done, demo_graph) == {"draft": "visited", "publish": "visited"}


def test_the_form_reader_builds_each_decision() -> None:
    """Each action's fields become its decision (``by`` optional); modify's value is JSON."""
    assert decision_from({"action": "approve", "by": "ana"}) == Approve(by="ana")
    assert decision_from({"action": "reject", "reason": " long "}) == Reject("long")
    assert decision_from({"action": "modify", "key": "n", "value": '{"a": [1]}'}) == Modify(
        "n", {"a": [1]}
    )
    assert decision_from({"action": "reroute", "target": "draft"}) == Reroute("draft")
    with pytest.raises(FormError, match=r"^the value for 'n' is not JSON \(Expecting value"):
        decision_from({"action": "modify", "key": "n", "value": "plain"})
    assert form_fields(b"a=1&b=x%20y&a=2") == {"a": "2", "b": "x y"}
    with pytest.raises(FormError, match=r"^field 'v' is longer than 100000 characters$"):
        form_fields(b"v=" + b"x" * 100_001)


def test_ages_read_both_ways() -> None:
    """Ages say how long ago, or how long until, in the largest unit that fits."""
    assert age(100.0, now=112.0) == "12 s ago"
    assert age(100.0, now=100.0 + 3 * 3600) == "3 h ago"
    assert age(130.0, now=100.0) == "in 30 s"


async def test_the_stream_reads_about_once_a_second_and_sends_only_changes(
    autojump_clock: Any,
) -> None:
    """Over 10 virtual seconds with a store that never wakes it, the stream reads about
    once a second (no busy loop) and sends one change per new version."""
    reads: list[float] = []

    async def read() -> tuple[str, dict[str, Any]]:
        reads.append(trio.current_time())
        return ("v1" if len(reads) < 4 else "v2"), {"n": len(reads)}

    sent = [m async for m in live.changes(read, object(), seconds=10.0)]
    changes = [m for m in sent if m.startswith("event: change")]
    assert len(changes) == 2 and '"version":"v2"' in changes[1]
    assert 9 <= len(reads) <= 11
    gaps = [b - a for a, b in itertools.pairwise(reads)]
    assert min(gaps) >= live.FLOOR


async def test_a_store_wake_up_makes_the_stream_read_at_once(autojump_clock: Any) -> None:
    """A store whose wait returns early (a change) is read again after the floor only."""
    reads: list[float] = []

    class Eager:
        async def wait_for_steering(self, run_id: str, seconds: float) -> None:
            await trio.lowlevel.checkpoint()

    async def read() -> tuple[str, dict[str, Any]]:
        reads.append(trio.current_time())
        return str(len(reads)), {}

    sent = [m async for m in live.changes(read, Eager(), seconds=1.0)]
    assert len(reads) == pytest.approx(1.0 / live.FLOOR, abs=1)
    assert len(re.findall("event: change", "".join(sent))) == len(reads)
