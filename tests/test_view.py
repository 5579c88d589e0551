"""The live terminal view (trio_graph._cli.view): event lines, progress, the barrier prompt."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import outcome
import pytest
import trio

from trio_graph import (
    Approve,
    BarrierError,
    BarrierId,
    Executor,
    GraphBuilder,
    Modify,
    Reject,
    Reroute,
)
from trio_graph import events as ev
from trio_graph._cli.view import (
    LineReader,
    Terminal,
    ask,
    default_decision,
    format_duration,
    parse_answer,
)
from trio_graph._model.decisions import describe_decision
from trio_graph._model.graph import BarrierNode
from trio_graph.demo import graph as demo_graph
from trio_graph.demo import initial_state
from trio_graph.errors import RunTimeout


async def _show_run(view: Terminal, *, approve: bool) -> list[ev.Event]:
    events = []
    async with Executor().stream(demo_graph, initial_state()) as run:
        if approve:
            run.decide_all("review", Approve())
        async for event in run:
            view.show(event)
            events.append(event)
    return events


async def test_one_line_per_node_with_step_duration_and_keys(autojump_clock: Any) -> None:
    """Each node execution is one line: step N, node, duration, keys changed."""
    out = io.StringIO()
    await _show_run(Terminal(out, max_steps=50, graph=demo_graph, live=False), approve=True)
    lines = out.getvalue().splitlines()
    node_lines = [line for line in lines if line.startswith("step ")]
    assert [line[8:].split()[0] for line in node_lines] == [
        "research",
        "use_notes",
        "draft",
        "score",
        "check",
        "draft",
        "score",
        "check",
        "review",
        "publish",
    ]
    assert node_lines[0].startswith("step 1  research ")
    assert node_lines[9].startswith("step 10 publish ")
    assert "checkpoint" not in out.getvalue()  # checkpoint lines are off by default
    assert node_lines[2].endswith("round, text, drafts")
    assert node_lines[2].split()[3:5] == ["50.0", "ms"]  # MockClock: exactly the node's sleep
    assert node_lines[4].endswith(" -")  # the condition node changes nothing
    assert node_lines[8].endswith("review.approved")


async def test_fallback_barrier_branches_and_outcome_lines(autojump_clock: Any) -> None:
    """Fallbacks, branch progress, barrier wait and decision, and the outcome get a line."""
    out = io.StringIO()
    await _show_run(Terminal(out, max_steps=50, live=False), approve=True)
    text = out.getvalue()
    assert "! research degraded: search service offline (simulated)" in text
    assert "score: 2 branches in parallel" in text
    assert "score.facts ok in 30.0 ms (1/2 done)" in text
    assert "score.style ok in 60.0 ms (2/2 done)" in text
    assert "|| review#1 waits for a decision" in text
    assert "-> review#1: approve\n" in text
    assert "completed in " in text and ": 10 steps; final state:" in text
    assert '        published = "structured concurrency: draft v2 from 2 sources"' in text


async def test_barrier_timeout_is_shown_as_the_default(autojump_clock: Any) -> None:
    """A barrier that times out says its default was taken, not a person's decision."""
    out = io.StringIO()
    await _show_run(Terminal(out, live=False), approve=False)
    assert "-> review#1: approve (timed out: the barrier's default)" in out.getvalue()


async def test_failure_lines() -> None:
    """A failing node's line says FAILED and the run's last line names the error."""

    def boom(state: Mapping[str, Any]) -> None:
        raise ValueError("boom")

    graph = GraphBuilder("g").task("a", boom).start("a").end("a").build()
    out = io.StringIO()
    view = Terminal(out, max_steps=5, live=False)
    async with Executor(max_steps=5).stream(graph, {}) as run:
        async for event in run:
            view.show(event)
    lines = out.getvalue().splitlines()
    assert lines[1].startswith("step 1 a ") and lines[1].endswith("FAILED")
    assert lines[-1] == "failed: node 'a' failed: ValueError: boom"


async def test_a_run_past_its_deadline_says_timed_out(autojump_clock: Any) -> None:
    """A run stopped by its deadline ends on a "timed out" line naming the node, not
    "cancelled" (nobody cancelled it)."""

    async def slow(state: Mapping[str, Any]) -> None:
        await trio.sleep(10)

    graph = GraphBuilder("g").task("a", slow).start("a").end("a").build()
    out = io.StringIO()
    view = Terminal(out, max_steps=5, live=False)
    async with Executor(max_steps=5).stream(graph, {}, timeout=1) as run:
        async for event in run:
            view.show(event)
    assert isinstance(run.error, RunTimeout)
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("timed out: run ") and "during node 'a'" in last


async def test_live_status_line_is_rewritten_in_place(autojump_clock: Any) -> None:
    """On a terminal the running node and the fan-out progress show on a rewritten line."""
    out = io.StringIO()
    await _show_run(Terminal(out, max_steps=50, live=True), approve=True)
    text = out.getvalue()
    assert "step 3  draft running... 0.0 s (run " in text
    assert "score: 1/2 branches done... " in text
    # every status line is cleared before the next real line is written
    statuses = re.findall(r"running\.\.\. [^\r\n]*(.)", text)
    assert statuses and set(statuses) == {"\r"}
    assert text.endswith("\n")


def test_plain_output_has_no_terminal_codes() -> None:
    """Off a terminal nothing but plain lines is written."""
    out = io.StringIO()
    view = Terminal(out, max_steps=3, live=False)
    view.show(ev.NodeStart("t", "a", 1, 1))
    view.show(ev.StateChanged("t", "a", 1, "x", 1))
    view.show(ev.StateChanged("t", "a", 1, "x", 2))
    view.show(ev.NodeEnd("t", "a", 1, True, 0.5))
    assert out.getvalue() == "step 1 a           500.0 ms  x\n"
    assert view.steps_done == 1


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.00042, "0.42 ms"), (0.0123, "12.3 ms"), (1.25, "1.25 s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    """Durations read as ms below a second, s above."""
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("answer", "decision"),
    [
        ("", Approve()),
        ("a", Approve()),
        ("  Approve ", Approve()),
        ("r", Reject("rejected at the terminal")),
        ("reject too long", Reject("too long")),
        ("m round=3", Modify("round", 3)),
        ("modify title = A title", Modify("title", "A title")),
        ('m tags=["x"]', Modify("tags", ["x"])),
        ("g publish", Reroute("publish")),
    ],
)
def test_parse_answer(answer: str, decision: Any) -> None:
    """Typed answers map to decisions; Enter is the default; values parse as JSON or text."""
    assert parse_answer(answer, Approve()) == decision


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("maybe", r"^unknown answer 'maybe'$"),
        ("m round", r"^modify needs KEY=VALUE \(VALUE as JSON, or plain text\)$"),
        ("g", r"^reroute needs a target node$"),
    ],
)
def test_parse_answer_errors(answer: str, message: str) -> None:
    """An answer that does not parse says what was expected."""
    with pytest.raises(ValueError, match=message):
        parse_answer(answer, None)


def test_default_decision_and_description() -> None:
    """A barrier's default action stands for a decision (skip: none)."""
    assert default_decision(BarrierNode("b", default="approve")) == Approve()
    assert default_decision(BarrierNode("b", default="skip")) is None
    assert isinstance(default_decision(BarrierNode("b", default="reject")), Reject)
    assert describe_decision(Reject("no")) == "reject (no)"
    assert describe_decision(Modify("k", {"a": 1})) == 'modify k = {"a": 1}'
    assert describe_decision(Reroute("x")) == "reroute to x"
    assert describe_decision(None) == "skip"


def _lines(*lines: str) -> Iterator[str]:
    yield from lines
    while True:
        yield ""  # end of input


async def test_ask_reprompts_until_an_answer_parses() -> None:
    """The prompt explains a bad answer, asks again, and sends the first good one."""
    answers = _lines("huh\n", "r needs sources\n")
    sent: list[tuple[BarrierId, Any]] = []
    out = io.StringIO()
    node = BarrierNode("review", timeout=30, default="approve")
    bid = BarrierId("review", 1)
    decision = await ask(
        lambda b, d: sent.append((b, d)),
        bid,
        node,
        LineReader(lambda: next(answers)),
        out,
        clock=lambda: 100.0,
    )
    assert decision == Reject("needs sources")
    assert sent == [(bid, Reject("needs sources"))]
    text = out.getvalue()
    question = "review#1: [a]pprove, [r]eject REASON, [m]odify KEY=VALUE or [g]oto NODE? "
    assert text.count(question + "Enter = approve: ") == 2
    assert text.count("review#1 waits: approve by default in 30 s\n") == 2
    assert "unknown answer 'huh'; answer a[pprove], r[eject]" in text


async def test_ask_sends_the_default_at_end_of_input() -> None:
    """With nothing left to read (Ctrl-D), the barrier's default is sent."""
    sent: list[Any] = []
    node = BarrierNode("review", default="approve")
    decision = await ask(
        lambda b, d: sent.append(d),
        BarrierId("review", 1),
        node,
        LineReader(lambda: ""),
        io.StringIO(),
    )
    assert decision == Approve() and sent == [Approve()]


async def test_ask_reprompts_when_the_run_refuses_the_decision() -> None:
    """A decision the run refuses (e.g. a reroute without an edge) is reported; it asks again."""
    answers = _lines("g nowhere\n", "a\n")
    sent: list[Any] = []

    def decide(bid: BarrierId, decision: Any) -> None:
        if isinstance(decision, Reroute):
            raise BarrierError("no edge to 'nowhere'", node="review")
        sent.append(decision)

    out = io.StringIO()
    await ask(decide, BarrierId("review", 1), None, LineReader(lambda: next(answers)), out)
    assert sent == [Approve()]
    assert "not accepted: no edge to 'nowhere' (node 'review')" in out.getvalue()


async def test_line_reader_drops_a_line_nobody_asked_for() -> None:
    """A line arriving after its prompt was cancelled never answers the next question."""
    reader = LineReader(lambda: "second\n")
    reader._deliver(outcome.Value("late answer\n"))  # arrives while nobody is asking
    assert await reader.readline() == "second\n"


async def test_ask_is_cancelled_when_the_barrier_resolves_otherwise() -> None:
    """Cancelling the prompt (the barrier timed out) stops it without sending anything."""
    release = trio.Event()
    gate = threading.Event()
    token = trio.lowlevel.current_trio_token()

    def blocked_readline() -> str:
        trio.from_thread.run_sync(release.set, trio_token=token)
        gate.wait()  # the person types only after the prompt was cancelled
        return "a\n"

    sent: list[Any] = []
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def prompt() -> None:
                await ask(
                    lambda b, d: sent.append(d),
                    BarrierId("b", 1),
                    None,
                    LineReader(blocked_readline),
                    io.StringIO(),
                )

            nursery.start_soon(prompt)
            await release.wait()
            scope.cancel()
    gate.set()
    assert sent == []


async def test_subgraph_nodes_show_the_outer_step() -> None:
    """A subgraph's nodes ("sub/x") count their own steps; the view shows the outer one."""
    inner = (
        GraphBuilder("inner")
        .task("x", lambda s: {"n": 1})
        .task("y", lambda s: None)
        .edge("x", "y")
        .start("x")
        .end("y")
        .build()
    )
    outer = (
        GraphBuilder("outer")
        .task("a", lambda s: None)
        .subgraph("sub", inner)
        .edge("a", "sub")
        .start("a")
        .end("sub")
        .build()
    )
    out = io.StringIO()
    view = Terminal(out, max_steps=9, live=False)
    async with Executor(max_steps=9).stream(outer, {}) as run:
        async for event in run:
            view.show(event)
    lines = [line[:12] for line in out.getvalue().splitlines() if line.startswith("step ")]
    assert lines == ["step 1 a    ", "step 2 sub/x", "step 2 sub/y", "step 2 sub  "]


def test_retry_line_names_the_delay() -> None:
    """A retry is shown with its message and the back-off before the next attempt."""
    out = io.StringIO()
    view = Terminal(out, live=False)
    failure = ev.Observed("Retrying", "attempt 1 failed: ConnectionError: reset", 1, 0.5)
    view.show(ev.ObservedError("t", "fetch", failure))
    assert out.getvalue() == (
        "        ! fetch retrying: attempt 1 failed: ConnectionError: reset (retry in 500.0 ms)\n"
    )


def test_checkpoint_lines_only_when_asked() -> None:
    """A checkpoint saved is a line only with ``checkpoints=True`` (``--checkpoints``)."""
    saved = ev.CheckpointSaved("t", "0123456789ab", "review", 8)
    quiet, loud = io.StringIO(), io.StringIO()
    Terminal(quiet, max_steps=50, live=False).show(saved)
    Terminal(loud, max_steps=50, live=False, checkpoints=True).show(saved)
    assert quiet.getvalue() == ""
    assert loud.getvalue() == "        checkpoint 01234567 (after step 8, next review)\n"


def test_status_line_timers_keep_running_on_redraw() -> None:
    """On a terminal a redraw rewrites the status line with the node's and the run's time."""
    now = [10.0]
    out = io.StringIO()
    view = Terminal(out, max_steps=50, live=True, clock=lambda: now[0])
    view.show(ev.GraphStart("t", "g", "a", 0))
    now[0] = 11.0
    view.show(ev.NodeStart("t", "a", 1, 1))
    view.show(ev.StateChanged("t", "a", 1, "x", 1))  # inside the node: the status stays
    now[0] = 13.5
    view.redraw()
    assert out.getvalue().endswith(
        "step 1  a running... 0.0 s (run 1.0 s)"
        "\r\x1b[2Kstep 1  a running... 0.0 s (run 1.0 s)"
        "\r\x1b[2Kstep 1  a running... 2.5 s (run 3.5 s)"
    )
    view.show(ev.NodeEnd("t", "a", 1, True, 2.5))
    before = out.getvalue()
    view.redraw()  # nothing running: nothing to redraw
    assert out.getvalue() == before and before.endswith("2.50 s  x\n")


def test_status_line_counts_branches_with_the_fanout_timer() -> None:
    """A fan-out's status line says branches done / total and how long the node runs."""
    now = [0.0]
    out = io.StringIO()
    view = Terminal(out, max_steps=50, live=True, clock=lambda: now[0])
    view.show(ev.NodeStart("t", "score", 1, 3))
    view.show(ev.ParallelStarted("t", "score", 1, 2))
    now[0] = 2.0
    view.show(ev.BranchCompleted("t", "score", "style", True, 2.0))
    assert out.getvalue().endswith("score: 1/2 branches done... 2.0 s (run 2.0 s)")


def test_a_barrier_line_shows_its_payload() -> None:
    """What a barrier shows (``BarrierWaiting.payload``) is printed under its line."""
    view = Terminal(io.StringIO(), max_steps=50, live=False)

    class Waiting:  # a BarrierWaiting carrying a payload (``show=fn``)
        barrier_id = BarrierId("review", 1)
        payload = {"draft": "v2", "scores": [1, 2]}

    lines = view._barrier_waiting(Waiting())  # type: ignore[arg-type]
    assert lines == [
        "        || review#1 waits for a decision; it shows:",
        "           {",
        '             "draft": "v2",',
        '             "scores": [',
        "               1,",
        "               2",
        "             ]",
        "           }",
    ]
    plain = view.lines(ev.BarrierWaiting("t", "review", 1, BarrierId("review", 1)))
    assert plain == ["        || review#1 waits for a decision"]


def test_payload_lines_are_bounded() -> None:
    """A long payload is cut to a few lines, each of bounded width; text shows as text."""
    from trio_graph._cli.prompt import payload_lines

    assert payload_lines("line one\nline two", "> ") == ["> line one", "> line two"]
    many = payload_lines(list(range(40)))
    assert len(many) == 13 and many[-1] == "  ... (30 more lines)"
    assert len(payload_lines("x" * 500)[0]) == 102
    assert payload_lines(None) == []


async def test_the_prompt_counts_down_on_a_terminal(autojump_clock: Any) -> None:
    """With a deadline, a live prompt rewrites the countdown line above the question."""
    gate = threading.Event()
    sent: list[Any] = []
    out = io.StringIO()
    async with trio.open_nursery() as nursery:

        async def prompt() -> None:
            await ask(
                lambda b, d: sent.append(d),
                BarrierId("review", 1),
                BarrierNode("review", timeout=30, default="approve"),
                LineReader(lambda: (gate.wait(), "r too short\n")[1]),
                out,
                live=True,
                clock=trio.current_time,
                payload={"draft": "v2"},
            )

        nursery.start_soon(prompt)
        await trio.sleep(2.5)
        gate.set()
    assert sent == [Reject("too short")]
    text = out.getvalue()
    shown = '  {\n    "draft": "v2"\n  }\n'
    assert text.startswith(shown + "review#1 waits: approve by default in 30 s\n")
    above = "\x1b7\x1b[1A\r\x1b[2Kreview#1 waits: approve by default in {} s\x1b8"
    assert above.format(29) in text and above.format(28) in text


async def test_the_prompt_counts_down_from_a_stored_deadline() -> None:
    """A deadline stored with the waiting checkpoint counts down what is left of it."""
    from types import SimpleNamespace

    from trio_graph._cli.running import stored_deadline

    waiting = SimpleNamespace(pending_barrier=BarrierId("review", 2), deadline=1012.0)
    deadlines = stored_deadline(waiting)  # type: ignore[arg-type]
    assert deadlines == {BarrierId("review", 2): 1012.0}
    assert stored_deadline(SimpleNamespace(pending_barrier=None)) == {}  # type: ignore[arg-type]
    out = io.StringIO()
    await ask(
        lambda b, d: None,
        BarrierId("review", 2),
        BarrierNode("review", timeout=30, default="reject"),
        LineReader(lambda: "a\n"),
        out,
        deadline=deadlines[BarrierId("review", 2)],
        clock=lambda: 1000.0,
    )
    assert out.getvalue().startswith("review#2 waits: reject (no answer: the barrier's default)")
    assert "by default in 12 s\n" in out.getvalue()


def test_branch_lines_name_their_outcome() -> None:
    """A branch line says ok, FAILED, cancelled (a loser or a failing sibling's victim) or
    "ok, discarded" (it succeeded after a race had its winners)."""
    out = io.StringIO()
    view = Terminal(out, max_steps=5, live=False)
    view.show(ev.ParallelStarted("t", "race", 1, 4))
    for branch, success, outcome_ in [
        ("a", True, "succeeded"),
        ("b", False, "failed"),
        ("c", False, "cancelled"),
        ("d", True, "discarded"),
    ]:
        view.show(ev.BranchCompleted("t", "race", branch, success, 1.0, outcome=outcome_))
    lines = out.getvalue().splitlines()
    assert [line.split(" in ")[0].strip() for line in lines[1:]] == [
        "race.a ok",
        "race.b FAILED",
        "race.c cancelled",
        "race.d ok, discarded",
    ]
