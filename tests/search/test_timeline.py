"""Replay speed without losing the fold: a lazily folded state answers every problem's
standing without folding it, clones keep every node field, and a bulk fold pauses (and
restores) the garbage collector."""

from __future__ import annotations

import dataclasses
import gc
import json

import pytest

from bdc_tui.demo import search_events
from engine.gcpause import gc_paused
from engine.search import events as ev
from engine.search.timeline import Timeline, clone_tree
from engine.search.tree import FINISHED, SEARCHING, SOLVED, Node, TreeState
from engine.store.records import Event


def _stored(events: list[Event]) -> list[Event]:
    """The events as the store hands them back: JSON text, decoded on first use."""
    return [
        Event.from_row(("r", i, float(i), e.kind, e.problem_id, e.node_id, json.dumps(e.payload_dict())))
        for i, e in enumerate(events, 1)
    ]


def _run(n_problems: int = 3) -> list[Event]:
    out: list[Event] = []
    for k in range(n_problems):
        # P/1 never solves: its standing goes searching -> finished
        out.extend(search_events(f"P/{k}", seed=k, max_nodes=40, solve=k != 1))
        out.append(Event("r", 0, 0.0, ev.PROBLEM_FINISHED, f"P/{k}", None, {"problem_id": f"P/{k}"}))
    return _stored(out)


def test_progress_of_every_problem_matches_the_fold_without_folding_it() -> None:
    events = _run()
    tl = Timeline(events, interval=20)
    for target in reversed(range(len(events) + 1)):  # backwards: every seek gives a fresh lazy state
        tl.seek(target)
        fresh = TreeState().apply_all(events[:target])
        for pid in ("P/0", "P/1", "P/2", "P/9"):
            want = fresh.progress(pid)
            if want is None and pid in tl.state.problems:  # seen (problem_started) but no tree event yet
                want = SEARCHING
            assert tl.state.progress(pid) == want, (target, pid)
        assert not any(tl.state.problems.is_materialised(p) for p in tl.state.problems), target
    standings = {TreeState().apply_all(events).progress(p) for p in ("P/0", "P/1", "P/2")}
    assert standings == {SOLVED, FINISHED}


def test_progress_of_a_folded_tree_follows_the_steps_after_it() -> None:
    events = _run(1)
    solved_at = next(i for i, e in enumerate(events) if e.kind == ev.SOLUTION_FOUND)
    tl = Timeline(events)
    tl.seek(solved_at)
    assert tl.state.problems.get("P/0") is not None  # folded now: later steps apply to this tree
    assert tl.state.progress("P/0") == SEARCHING
    tl.step()
    assert tl.state.progress("P/0") == SOLVED


def test_clone_copies_every_node_field_and_owns_its_child_list() -> None:
    values = {
        f.name: v
        for f, v in zip(
            dataclasses.fields(Node),
            ["7", "3", "t", "A", 0.25, 2, True, ["8"], 5, 0.5, 0.75, [{"policy": "A"}], True, 2, ["old"], "s", 4],
            strict=True,
        )
    }
    n = Node(**values)
    c = n.clone()
    assert {f.name: getattr(c, f.name) for f in dataclasses.fields(Node)} == values
    c.children.append("9")
    assert n.children == ["8"]


def test_clone_tree_then_fold_leaves_the_original_alone() -> None:
    events = _run(1)
    t = TreeState().apply_all(events[: len(events) // 2]).problems["P/0"]
    before = t.signature()
    c = clone_tree(t)
    state = TreeState(problems={"P/0": c})
    state.apply_all(events[len(events) // 2 :])
    assert t.signature() == before and c.signature() != before


def test_released_payloads_decode_again_equal() -> None:
    e = _run(1)[3]
    first = e.payload
    e.release()
    assert e.payload == first and e.payload is not first
    own = Event("r", 1, 0.0, ev.ROLLOUT_FINISHED, "P/0", None, {"rollout": 2})
    p = own.payload
    own.release()  # not stored: nothing to decode it from, so it keeps it
    assert own.payload is p


def test_gc_pause_nests_and_restores_even_after_an_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # disabled by someone else before: left so
    finally:
        gc.enable()


def test_a_retried_problem_starts_over_in_the_fold_and_in_its_standing() -> None:
    first = list(search_events("P/0", seed=0, max_nodes=30))  # solves
    first.append(Event("r", 0, 0.0, ev.PROBLEM_FINISHED, "P/0", None, {"problem_id": "P/0"}))
    retry = list(search_events("P/0", seed=5, max_nodes=12, solve=False))
    events = _stored(first + retry)
    tl = Timeline(events, interval=10)
    for target in reversed(range(len(events) + 1)):
        tl.seek(target)
        fresh = TreeState().apply_all(events[:target])
        want = fresh.progress("P/0") or (SEARCHING if "P/0" in tl.state.problems else None)
        assert tl.state.progress("P/0") == want, target
    assert tl.state.progress("P/0") is None
    tl.seek(len(first))
    assert tl.state.progress("P/0") == SOLVED
    tl.seek(len(first) + 3)  # the retry has begun: the solve belongs to the attempt before
    assert tl.state.progress("P/0") == SEARCHING
    tl.seek(len(events))
    assert tl.state.progress("P/0") == FINISHED
    whole = TreeState().apply_all(events).problems["P/0"]
    assert whole.signature() == TreeState().apply_all(events[len(first) :]).problems["P/0"].signature()
