"""The viewer side of the fold: checkpointed seeking equals a fresh fold; the ids ``apply`` says it touched."""

from __future__ import annotations

import random

from bdc_tui.demo import search_events
from engine.search import events as ev
from engine.search.timeline import Timeline, clone_state
from engine.search.tree import TreeState
from engine.store.records import Event


def _events(n_nodes: int = 120) -> list[Event]:
    out = []
    for i, e in enumerate(search_events("P/0", seed=1, max_nodes=n_nodes), 1):
        out.append(Event("r", i, float(i), e.kind, e.problem_id, e.node_id, e.payload))
    return out


def _sig(state: TreeState) -> list:
    return {pid: t.signature() for pid, t in state.problems.items()}


def test_seek_matches_fresh_fold_in_any_order() -> None:
    events = _events()
    tl = Timeline(events, interval=50)
    rng = random.Random(0)
    for target in [len(events), 0, 7, 300, 120, 121, 49, 50, 51, len(events) - 1] + [
        rng.randrange(len(events)) for _ in range(10)
    ]:
        tl.seek(target)
        fresh = TreeState().apply_all(events[:target])
        assert tl.position == target
        assert _sig(tl.state) == _sig(fresh), target


def test_checkpoints_are_not_mutated_by_later_steps() -> None:
    events = _events()
    tl = Timeline(events, interval=40)
    tl.seek(len(events))
    assert _sig(tl.state)  # folds the problem, taking checkpoints on the way
    snaps = {pid: [(pos, t.signature()) for pos, t in c] for pid, c in tl._checkpoints.items()}
    assert sum(len(c) for c in snaps.values()) >= 2
    tl.seek(41)
    before = _sig(tl.state)
    tl.seek(len(events))
    _sig(tl.state)
    tl.seek(41)
    assert _sig(tl.state) == before
    assert {pid: [(pos, t.signature()) for pos, t in c] for pid, c in tl._checkpoints.items()} == snaps


def test_marks_and_next_mark() -> None:
    events = _events()
    tl = Timeline(events)
    prunes = tl.marks("prune")
    assert prunes and all(events[i - 1].kind == ev.PRUNE for i in prunes)
    tl.seek(0)
    assert tl.next_mark(["prune"]) == prunes[0]
    tl.seek(prunes[0])
    assert tl.next_mark(["prune"], forward=False) is None
    assert tl.marks("solution")


def test_clone_state_is_independent() -> None:
    events = _events(30)
    s = TreeState().apply_all(events)
    c = clone_state(s)
    t = next(iter(c.problems.values()))
    t.nodes["0"].children.append("zzz")
    assert "zzz" not in next(iter(s.problems.values())).nodes["0"].children


def test_apply_returns_expand_backup_and_old_selection_ids() -> None:
    events = _events(30)
    s = TreeState()
    for e in events:
        before = list(s.problems[e.problem_id].selection) if e.problem_id in s.problems else []
        ids = s.apply(e)
        if e.kind == ev.EXPAND:
            assert e.payload.parent in ids and all(c.node in ids for c in e.payload.children)
        if e.kind == ev.SELECT:
            assert set(before) <= ids and set(e.payload.path) <= ids
        if e.kind == ev.BACKUP:
            assert set(e.payload.q) <= ids
        if e.kind in (ev.SIMULATE, ev.PRUNE, ev.REFINE):
            assert ids == {e.payload.node}


def _multi_events() -> list[Event]:
    out = []
    for k in range(3):
        for e in search_events(f"P/{k}", seed=k, max_nodes=60):
            out.append(Event("r", len(out) + 1, float(len(out)), e.kind, e.problem_id, e.node_id, e.payload))
    return out


def test_lazy_per_problem_fold_matches_fresh_fold() -> None:
    """Long jumps fold only the problem looked at; any order of seeks and steps agrees with a fresh fold."""
    events = _multi_events()
    tl = Timeline(events, interval=25)
    tl.seek(len(events))
    last = events[-1].problem_id
    assert tl.state.problems.get(last).signature() == TreeState().apply_all(events).problems[last].signature()
    assert [p for p in tl.state.problems if tl.state.problems.is_materialised(p)] == [last]
    rng = random.Random(3)
    for target in [0, len(events), 30, 31, 24, len(events) - 5] + [rng.randrange(len(events)) for _ in range(12)]:
        tl.seek(target)
        for _ in range(rng.randrange(4)):
            tl.step()
        assert _sig(tl.state) == _sig(TreeState().apply_all(events[: tl.position])), target
        assert tl.state.last_seq == (events[tl.position - 1].seq if tl.position else 0)


def test_lazy_events_decode_on_use() -> None:
    import json

    decoded: set[str | None] = set()

    class Counted(Event):
        """Records the problems whose payloads are decoded from JSON."""

        __slots__ = ()

        @property
        def payload(self):
            if self._payload is None:
                decoded.add(self.problem_id)
            return Event.payload.fget(self)

    events = [
        Counted(e.run_id, e.seq, e.ts, e.kind, e.problem_id, e.node_id, json.dumps(e.payload_dict()))
        for e in _multi_events()
    ]
    tl = Timeline(events, interval=25)
    tl.seek(len(events))
    tl.state.problems.get(events[-1].problem_id)
    assert decoded == {events[-1].problem_id}
    assert _sig(tl.state) == _sig(TreeState().apply_all(_multi_events()))
