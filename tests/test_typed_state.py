"""Typed state (DESIGN §16): the schema's fields are the keys, every update is checked by
the converter before it is committed, and stores give the values back with their types."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import itertools
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypedDict

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_graph import Approve, CheckpointPolicy, Executor, GraphBuilder, Modify, reducers
from trio_graph import events as ev
from trio_graph.errors import InvalidGraph, NodeExecutionFailed, StateError
from trio_graph.stores import MemoryStore, Store
from trio_graph.stores.sqlite import SQLiteStore
from trio_graph.testing.schemas import schemas, values_of, wrong_update


class Mood(enum.Enum):
    CALM = "calm"
    KEEN = "keen"


@attrs.frozen
class Note:
    text: str
    at: datetime.datetime


@attrs.define
class Everything:
    """One field of each kind a JSON row would lose."""

    pair: tuple[int, str] = (0, "")
    many: tuple[int, ...] = ()
    bag: frozenset[str] = frozenset()
    tags: set[str] = attrs.Factory(set)
    day: datetime.date = datetime.date(2000, 1, 1)
    mood: Mood = Mood.CALM
    note: Note | None = None
    notes: list[Note] = attrs.Factory(list)
    scores: dict[str, float] = attrs.Factory(dict)
    maybe: int | None = None


@attrs.define
class Research:
    topic: str
    sources: Annotated[list[str], reducers.append] = attrs.Factory(list)
    found: Annotated[list[str], reducers.extend] = attrs.Factory(list)
    count: Annotated[int, reducers.add] = 0
    approved: bool = False
    reason: str | None = None


def _graph(schema: type, *nodes: tuple[str, Any]) -> Any:
    builder = GraphBuilder("typed", state=schema)
    for name, fn in nodes:
        builder.task(name, fn)
    for (a, _), (b, _) in itertools.pairwise(nodes):
        builder.edge(a, b)
    return builder.start(nodes[0][0]).end(nodes[-1][0]).build()


async def test_updates_are_structured_by_the_field_types() -> None:
    """A list given for a tuple field is committed as a tuple, an enum's value as the enum;
    the nodes see the typed values, also as attributes of the state."""
    seen: dict[str, Any] = {}

    def put(state: Everything) -> dict[str, Any]:
        return {"pair": [1, "a"], "many": [1, 2], "mood": "keen", "tags": ["x"]}

    def look(state: Everything) -> None:
        seen.update(pair=state.pair, many=state["many"], mood=state.mood, tags=state.tags)

    result = await Executor().run(_graph(Everything, ("put", put), ("look", look)), {})
    assert seen == {"pair": (1, "a"), "many": (1, 2), "mood": Mood.KEEN, "tags": {"x"}}
    assert result.state["pair"] == (1, "a")


async def test_a_wrong_type_names_node_key_type_and_value() -> None:
    """``"1"`` is not an int: StateError naming node, key, expected type and the value."""
    graph = _graph(Research, ("count", lambda s: {"count": "1"}))
    with pytest.raises(StateError) as info:
        await Executor().run(graph, {"topic": "t"})
    err = info.value
    assert (err.node, err.key) == ("count", "count")
    assert "'1'" in err.message and "int" in err.message


async def test_an_unknown_key_is_an_error_not_a_new_key() -> None:
    """A typo in an update (``sumary``) is refused, naming the fields there are."""
    graph = _graph(Research, ("write", lambda s: {"sumary": "x"}))
    with pytest.raises(StateError, match=r"unknown state key 'sumary'.*topic") as info:
        await Executor().run(graph, {"topic": "t"})
    assert info.value.node == "write"


async def test_a_refused_update_leaves_the_state_unchanged() -> None:
    """All or nothing: one bad key of an update commits none of its keys (the failure
    checkpoint holds the state before the node)."""
    store = MemoryStore()
    graph = _graph(
        Research,
        ("first", lambda s: {"count": 1}),
        ("second", lambda s: {"count": 5, "topic": 3}),
    )
    with pytest.raises(StateError):
        await Executor(store=store).run(graph, {"topic": "t"})
    [run] = await store.runs()
    latest = await store.latest(run.run_id)
    assert latest is not None and latest.state["count"] == 1
    assert latest.state["topic"] == "t"


async def test_reducers_declared_on_fields_check_what_they_take() -> None:
    """``append`` takes one item of the list's type, ``extend`` a list of them, ``add``
    the field's type; each is checked before the reducer runs."""
    graph = _graph(
        Research,
        ("a", lambda s: {"sources": "s1", "found": ("f1", "f2"), "count": 2}),
        ("b", lambda s: {"sources": "s2", "count": 3}),
    )
    result = await Executor().run(graph, {"topic": "t"})
    assert result.state["sources"] == ["s1", "s2"]
    assert result.state["found"] == ["f1", "f2"]
    assert result.state["count"] == 5
    bad = _graph(Research, ("a", lambda s: {"sources": 7}))
    with pytest.raises(StateError, match=r"item 7 is not str"):
        await Executor().run(bad, {"topic": "t"})


async def test_the_initial_state_is_checked_and_gets_defaults() -> None:
    """An instance or a mapping; defaults fill what it leaves out; a missing required
    field, an unknown key and a wrong type are errors."""
    graph = _graph(Research, ("noop", lambda s: None))
    result = await Executor().run(graph, Research("t", count=2))
    assert result.state == {
        "topic": "t",
        "sources": [],
        "found": [],
        "count": 2,
        "approved": False,
        "reason": None,
    }
    with pytest.raises(StateError, match=r"leaves out 'topic'"):
        await Executor().run(graph, {})
    with pytest.raises(StateError, match=r"unknown state key 'topik'"):
        await Executor().run(graph, {"topik": "t"})
    with pytest.raises(StateError, match=r"the initial state: value 3 is not str"):
        await Executor().run(graph, {"topic": 3})


async def test_dataclass_and_typeddict_schemas() -> None:
    """A dataclass and a TypedDict work like an attrs class."""

    @dataclasses.dataclass
    class DC:
        n: int
        names: list[str] = dataclasses.field(default_factory=list)

    class TD(TypedDict):
        n: int
        when: datetime.date

    dc = _graph(DC, ("bump", lambda s: {"n": s.n + 1, "names": ("a",)}))
    assert (await Executor().run(dc, DC(1))).state == {"n": 2, "names": ["a"]}
    td = _graph(TD, ("later", lambda s: {"when": s.when + datetime.timedelta(days=1)}))
    state = (await Executor().run(td, {"n": 1, "when": "2024-01-01"})).state
    assert state["when"] == datetime.date(2024, 1, 2)


def test_build_refuses_what_cannot_be_typed() -> None:
    """A reducer of a non-field, a reducer declared twice, ``extend`` on an int field,
    barrier keys that are not fields and a field named like a mapping method are build
    problems, reported together."""

    @attrs.define
    class S:
        n: Annotated[int, reducers.add] = 0
        items: int = 0

    builder = (
        GraphBuilder("bad", state=S)
        .task("a", lambda s: None)
        .barrier("ok")
        .edge("a", "ok")
        .reducer("n", reducers.max)
        .reducer("nope", reducers.add)
        .start("a")
        .end("ok")
    )
    with pytest.raises(InvalidGraph) as info:
        builder.build()
    text = "\n".join(info.value.problems)
    assert "'nope': not a field of S" in text
    assert "key 'n' has two reducers" in text
    assert "barrier 'ok': its approved_key 'ok.approved' is not a field" in text
    assert "state field 'items' cannot be read as an attribute" in text
    with pytest.raises(InvalidGraph, match=r"reducer 'extend' needs a list"):
        GraphBuilder("b", state=S).task("a", lambda s: None).reducer(
            "items", reducers.extend
        ).start("a").end("a").build()
    with pytest.raises(InvalidGraph, match=r"attrs class, a dataclass or a TypedDict"):
        GraphBuilder("c", state=int).task("a", lambda s: None).start("a").end("a").build()


def test_the_hash_sees_the_schema_and_untyped_hashes_stay() -> None:
    """Changing a field's type changes the graph hash; an untyped graph hashes as before."""

    @attrs.define
    class A:
        n: int = 0

    @attrs.define
    class B:
        n: str = ""

    def build(schema: type | None) -> Any:
        return GraphBuilder("h", state=schema).task("t", lambda s: None).start("t").end("t")

    assert build(A).build().hash() != build(B).build().hash()
    assert build(None).build().hash() == (
        GraphBuilder("h").task("t", lambda s: None).start("t").end("t").build().hash()
    )


async def test_the_view_is_read_only() -> None:
    """A node cannot assign to the typed state: it returns updates."""

    def assign(state: Research) -> None:
        state.topic = "changed"

    with pytest.raises(NodeExecutionFailed, match=r"read-only"):
        await Executor().run(_graph(Research, ("assign", assign)), {"topic": "t"})


async def test_a_barrier_writes_its_keys_as_fields() -> None:
    """A typed barrier's approved_key / reason_key are fields and are checked like any."""
    graph = (
        GraphBuilder("review", state=Research)
        .task("draft", lambda s: {"count": 1})
        .barrier("check", approved_key="approved", reason_key="reason")
        .edge("draft", "check")
        .start("draft")
        .end("check")
        .build()
    )
    result = await Executor().run(graph, {"topic": "t"}, decisions={"check": Approve()})
    assert result.state["approved"] is True


async def test_a_typed_subgraph_takes_its_fields_from_the_parent() -> None:
    """Without input=, a typed child starts from the parent's keys that are its fields
    and hands its updates up, checked by the parent's schema."""

    @attrs.define
    class Child:
        count: int = 0

    child = _graph(Child, ("inc", lambda s: {"count": s.count + 10}))
    parent = (
        GraphBuilder("parent", state=Research)
        .subgraph("sub", child)
        .start("sub")
        .end("sub")
        .build()
    )
    result = await Executor().run(parent, {"topic": "t", "count": 1})
    assert result.state["count"] == 1 + 11  # add: the child's final 11 added to 1


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)
_int = st.integers(-(2**53), 2**53)
_when = st.datetimes(min_value=datetime.datetime(1900, 1, 1))
_note = st.builds(Note, _text, _when)
EVERYTHING = st.builds(
    Everything,
    pair=st.tuples(_int, _text),
    many=st.lists(_int, max_size=4).map(tuple),
    bag=st.frozensets(_text, max_size=4),
    tags=st.sets(_text, max_size=4),
    day=st.dates(),
    mood=st.sampled_from(Mood),
    note=st.none() | _note,
    notes=st.lists(_note, max_size=3),
    scores=st.dictionaries(_text, st.floats(allow_nan=False, allow_infinity=False), max_size=3),
    maybe=st.none() | _int,
)


def _stores(tmp: Path) -> list[Store]:
    from _pg import SKIP_WITHOUT_SERVER, throwaway_store

    stores: list[Store] = [MemoryStore(), SQLiteStore(tmp / "typed.db")]
    if not SKIP_WITHOUT_SERVER.args[0]:
        stores.append(throwaway_store(tmp))
    return stores


@settings(max_examples=15)
@given(value=EVERYTHING)
async def test_any_value_round_trips_through_every_store_and_a_resume(value: Everything) -> None:
    """Written by a node, stored, loaded by a resume in a new executor: the state has the
    same values with the same types (tuples, sets, enums, dates, nested attrs)."""
    fields = {a.name: getattr(value, a.name) for a in attrs.fields(Everything)}
    flaky = {"fail": True}
    seen: list[Mapping[str, Any]] = []

    def stop(state: Everything) -> None:
        if flaky["fail"]:
            raise RuntimeError("stop here")
        seen.append(dict(state))

    graph = _graph(Everything, ("put", lambda s: fields), ("stop", stop))
    with tempfile.TemporaryDirectory() as tmp:
        for store in _stores(Path(tmp)):
            flaky["fail"] = True
            async with store:
                with pytest.raises(NodeExecutionFailed, match="stop here"):
                    await Executor(store=store).run(graph, {})
                [run] = await store.runs()
                flaky["fail"] = False
                async with Executor(store=store).resume(graph, run.run_id) as resumed:
                    async for _ in resumed:
                        pass
                await store.delete(run.run_id)
            assert seen[-1] == fields
            assert {k: type(v) for k, v in seen[-1].items()} == {
                k: type(v) for k, v in fields.items()
            }


async def test_a_forks_patch_is_checked_and_structured() -> None:
    """A fork's patch of a typed run is checked like an update: a JSON-form value gets its
    type, a wrong one is a StateError naming the key."""
    store = MemoryStore()
    graph = _graph(Everything, ("put", lambda s: {"many": [1]}), ("look", lambda s: None))
    every_step = CheckpointPolicy(every_step=True)
    result = await Executor(store=store, policy=every_step).run(graph, {})
    [first, *_] = await store.list(result.run_id)
    async with Executor(store=store).fork(graph, first.checkpoint_id, {"day": "2024-02-03"}) as run:
        async for _ in run:
            pass
    assert run.result is not None and run.result.state["day"] == datetime.date(2024, 2, 3)
    with pytest.raises(StateError, match=r"'many'"):
        async with Executor(store=store).fork(graph, first.checkpoint_id, {"many": "x"}) as bad:
            async for _ in bad:
                pass


@pytest.mark.slow
def test_mypy_sees_the_fields_a_node_reads(tmp_path: Path) -> None:
    """A node annotated with the schema class is type-checked: mypy accepts the example's
    nodes and reports a misspelt field."""
    mypy_api = pytest.importorskip("mypy.api")
    example = Path(__file__).resolve().parent.parent / "examples" / "typed_research.py"
    (tmp_path / "typed_research.py").write_text(example.read_text())
    typo = tmp_path / "typo.py"
    typo.write_text(
        "from typed_research import Research\n\n\n"
        "def node(state: Research) -> dict[str, str]:\n"
        "    return {'summary': state.topik}\n"
    )
    options = ["--cache-dir", str(tmp_path / "cache"), "--follow-imports=silent"]
    out, _, status = mypy_api.run([*options, str(tmp_path / "typed_research.py")])
    assert status == 0, out
    out, _, status = mypy_api.run([*options, str(typo)])
    assert status == 1 and '"Research" has no attribute "topik"' in out, out


async def test_a_modify_decision_is_checked_when_it_is_made() -> None:
    """``Modify`` of a typed graph is refused at ``run.decide`` when its key is no field
    or its value has the wrong type, and committed structured when it is right."""
    graph = (
        GraphBuilder("review", state=Research)
        .barrier("check", approved_key="approved", reason_key="reason")
        .task("after", lambda s: None)
        .edge("check", "after")
        .start("check")
        .end("after")
        .build()
    )
    async with Executor().stream(graph, {"topic": "t"}) as run:
        async for event in run:
            if isinstance(event, ev.BarrierWaiting):
                with pytest.raises(StateError, match=r"unknown state key 'cnt'"):
                    run.decide(event.barrier_id, Modify("cnt", 1))
                with pytest.raises(StateError, match=r"value 'x' is not int"):
                    run.decide(event.barrier_id, Modify("count", "x"))
                run.decide(event.barrier_id, Modify("found", ("a",)))
    assert run.result is not None and run.result.state["found"] == ["a"]


async def test_branches_and_map_items_read_the_typed_view_and_merge_checked() -> None:
    """Parallel branches and map items of a typed graph read the state as attributes;
    their updates are structured at the merge, and with a store a typed value in a
    branch's update is kept (JSON in the row) instead of refused."""

    @attrs.define
    class Fan:
        words: list[str] = attrs.Factory(list)
        seen: Annotated[list[datetime.date], reducers.append] = attrs.Factory(list)
        lengths: Annotated[list[int], reducers.append] = attrs.Factory(list)

    graph = (
        GraphBuilder("fan", state=Fan)
        .parallel(
            "both",
            {
                "one": lambda s: {"seen": datetime.date(2024, 1, 1)},
                "two": lambda s: {"seen": "2024-01-02"},
            },
        )
        .map("count", lambda word, s: {"lengths": len(word) + len(s.words)}, over=lambda s: s.words)
        .edge("both", "count")
        .start("both")
        .end("count")
        .build()
    )
    every_step = CheckpointPolicy(every_step=True)
    result = await Executor(store=MemoryStore(), policy=every_step).run(
        graph, {"words": ["ab", "c"]}
    )
    assert result.state["seen"] == [datetime.date(2024, 1, 1), datetime.date(2024, 1, 2)]
    assert result.state["lengths"] == [4, 3]


@settings(max_examples=40)
@given(data=st.data())
async def test_any_wrong_typed_update_is_refused_with_the_state_unchanged(data: Any) -> None:
    """For any drawn schema, any valid values then one wrong-typed value: the wrong update
    is a StateError naming node and key, and the state is the one before that node."""
    schema = data.draw(schemas())
    good = data.draw(values_of(schema))
    key, bad = data.draw(wrong_update(schema))
    seen: list[dict[str, Any]] = []

    def look(state: Any) -> None:
        seen.append(dict(state))

    graph = (
        GraphBuilder("wrong", state=schema)
        .task("good", lambda s: good)
        .task("look", look)
        .task("bad", lambda s: {key: bad})
        .edge("good", "look")
        .edge("look", "bad")
        .start("good")
        .end("bad")
        .build()
    )
    store = MemoryStore()
    with pytest.raises(StateError) as info:
        await Executor(store=store).run(graph, {})
    assert (info.value.node, info.value.key) == ("bad", key)
    [run] = await store.runs()
    latest = await store.latest(run.run_id)
    assert latest is not None
    restored = graph.schema.structure_state(latest.state, "latest")
    assert restored == seen[0] == good


@settings(max_examples=15)
@given(data=st.data())
async def test_drawn_schemas_round_trip_through_sqlite_and_a_resume(data: Any) -> None:
    """Any drawn schema and values: written, stored on SQLite, resumed by another
    executor: equal values of the same types."""
    schema = data.draw(schemas())
    good = data.draw(values_of(schema))
    flaky = {"fail": True}
    seen: list[dict[str, Any]] = []

    def stop(state: Any) -> None:
        if flaky["fail"]:
            raise RuntimeError("stop here")
        seen.append(dict(state))

    graph = _graph(schema, ("put", lambda s: good), ("stop", stop))
    with tempfile.TemporaryDirectory() as tmp:
        async with SQLiteStore(Path(tmp) / "drawn.db") as store:
            with pytest.raises(NodeExecutionFailed):
                await Executor(store=store).run(graph, {})
            [run] = await store.runs()
            flaky["fail"] = False
            async with Executor(store=store).resume(graph, run.run_id) as resumed:
                async for _ in resumed:
                    pass
    assert seen[-1] == good
    assert {k: type(v) for k, v in seen[-1].items()} == {k: type(v) for k, v in good.items()}
