"""Timeline: fast seeking over a stored run's events, for replay viewers.

Live view and replay both fold ``engine.search.tree.TreeState`` with ``apply`` — the one
fold the search itself uses — so they cannot disagree with the engine. ``apply`` returns
the node ids an event touched, so a viewer updates only those. What this module adds is
seeking: the events of a stored run are held in memory (payloads decoded on first use,
``engine.store.Event``) and folded lazily per problem with per-problem checkpoints, so
opening a big run or stepping backwards re-folds at most the shown problem's events since
its nearest checkpoint. Nothing here draws; the TUI's replay screen drives it.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.gcpause import gc_paused
from engine.search import events as ev
from engine.search.events import KIND_GROUPS
from engine.search.tree import FINISHED, SEARCHING, SOLVED, ProblemTree, TreeState
from engine.store.records import Event


def clone_tree(t: ProblemTree) -> ProblemTree:
    """A copy deep enough for the fold: it only mutates node lists and scalar fields.

    ``copy.deepcopy`` of a 5,000-node tree costs ~100 ms; this costs a few ms because
    solutions and payload dicts are replaced, never mutated, by ``TreeState.apply``.
    """
    out = copy.copy(t)
    out.nodes = {nid: n.clone() for nid, n in t.nodes.items()}
    out.selection = list(t.selection)
    out.errors = list(t.errors)
    return out


def clone_state(s: TreeState) -> TreeState:
    out = copy.copy(s)
    out.problems = {pid: clone_tree(t) for pid, t in s.problems.items()}
    return out


class LazyProblems(dict):
    """``TreeState.problems`` whose trees are folded when first looked up.

    Keys (the problems seen so far, in order) are always present; a value is computed by
    ``loader(pid)`` on the first ``[]``/``get``/``items``/``values``. ``TreeState.apply``
    looks trees up through ``get``, so the fold itself materialises what it touches.
    """

    def __init__(self, loader: Any, pids: Iterable[str] = ()) -> None:
        super().__init__()
        self._loader = loader
        self._lazy: set[str] = set()
        for pid in pids:
            dict.__setitem__(self, pid, None)
            self._lazy.add(pid)

    def is_materialised(self, pid: str) -> bool:
        return dict.__contains__(self, pid) and pid not in self._lazy

    def _materialise(self, pid: str) -> None:
        self._lazy.discard(pid)
        dict.__setitem__(self, pid, self._loader(pid))

    def __getitem__(self, pid: str) -> ProblemTree:
        if pid in self._lazy:
            self._materialise(pid)
        return dict.__getitem__(self, pid)

    def get(self, pid: str, default: Any = None) -> Any:  # type: ignore[override]
        if pid in self._lazy:
            self._materialise(pid)
        return dict.get(self, pid, default)

    def __setitem__(self, pid: str, tree: ProblemTree) -> None:
        self._lazy.discard(pid)
        dict.__setitem__(self, pid, tree)

    def values(self) -> list[ProblemTree]:  # type: ignore[override]
        return [self[p] for p in self]

    def items(self) -> list[tuple[str, ProblemTree]]:  # type: ignore[override]
        return [(p, self[p]) for p in self]


class TimelineState(TreeState):
    """The state a ``Timeline`` shows: problem trees fold on first look-up (``LazyProblems``),
    and ``progress`` answers from the timeline's index for a tree not folded yet, so a
    viewer marking every problem (solved, finished, searching) folds none of them."""

    def __init__(self, timeline: Timeline) -> None:
        super().__init__()
        self._timeline = timeline

    def progress(self, problem_id: str) -> str | None:
        problems = self.problems
        if isinstance(problems, LazyProblems) and not problems.is_materialised(problem_id):
            if problem_id not in problems:
                return None
            # not folded: no event of it was applied since the state was made, so its
            # standing is that of the events before the timeline's position
            return self._timeline.progress_at(problem_id, self._timeline.position)
        return super().progress(problem_id)


@dataclass
class Timeline:
    """A stored run's events; ``seek(i)`` gives the fold after i events, one problem at a time.

    The fold of a problem only depends on that problem's events, and a viewer shows one
    problem at a time. So the state after a jump is a ``TreeState`` whose problem trees
    are folded lazily (``LazyProblems``) from that problem's nearest checkpoint, and only
    short forward moves step event by event. Opening a 50,000-event run at its end
    therefore folds (and JSON-decodes) the shown problem's events only.

    Checkpoints are per problem, taken every ``interval`` of its events while it is
    folded; they are never mutated (a tree restored from one is cloned first).
    """

    events: Sequence[Event]
    interval: int = 2000
    state: TreeState = field(default_factory=TreeState)
    position: int = 0  # number of events applied to ``state``

    def __post_init__(self) -> None:
        self._marks: dict[str, list[int]] = {}
        self._by_problem: dict[str, list[int]] = {}  # pid -> indexes of its events
        self._run_level: list[int] = []  # indexes of events without a problem
        # pid -> indexes of its problem_started / solution_found / problem_finished events (what
        # ``progress_at`` reads: within an attempt the fold never clears ``solved_by`` or ``finished``)
        self._starts: dict[str, list[int]] = {}
        self._solved: dict[str, list[int]] = {}
        self._finished: dict[str, list[int]] = {}
        standing = {
            ev.PROBLEM_STARTED: self._starts,
            ev.SOLUTION_FOUND: self._solved,
            ev.PROBLEM_FINISHED: self._finished,
        }
        groups = {k: g for g, kinds in KIND_GROUPS.items() for k in kinds}
        for i, e in enumerate(self.events):
            group = groups.get(e.kind)
            pid = e.problem_id
            if group is not None:
                self._marks.setdefault(group, []).append(i + 1)
            if pid is not None and e.kind in standing:
                standing[e.kind].setdefault(pid, []).append(i)
            if pid is None:
                self._run_level.append(i)
            else:
                idx = self._by_problem.get(pid)
                if idx is None:
                    self._by_problem[pid] = [i]
                else:
                    idx.append(i)
        self._first = {pid: idx[0] for pid, idx in self._by_problem.items()}
        # pid -> sorted [(position, tree)]: the fold of pid's events with index < position
        self._checkpoints: dict[str, list[tuple[int, ProblemTree]]] = {}
        self.state = self._lazy_state(0)

    def __len__(self) -> int:
        return len(self.events)

    def marks(self, group: str) -> list[int]:
        """Positions (1-based: 'after applying event i') of the events in a kind group."""
        return self._marks.get(group, [])

    def next_mark(self, groups: Iterable[str], forward: bool = True) -> int | None:
        positions = sorted({i for g in groups for i in self.marks(g)})
        if forward:
            k = bisect.bisect_right(positions, self.position)
            return positions[k] if k < len(positions) else None
        k = bisect.bisect_left(positions, self.position) - 1
        return positions[k] if k >= 0 else None

    def progress_at(self, pid: str, position: int) -> str | None:
        """``pid``'s standing after ``position`` events (``TreeState.progress``), without folding it."""
        first = self._first.get(pid)
        if first is None or first >= position:
            return None
        starts = self._starts.get(pid, [])
        k = bisect.bisect_left(starts, position) - 1
        attempt = starts[k] if k >= 0 else 0  # the fold starts the tree over at each problem_started

        def seen(indexes: list[int]) -> bool:
            j = bisect.bisect_left(indexes, attempt)
            return j < len(indexes) and indexes[j] < position

        if seen(self._solved.get(pid, [])):
            return SOLVED
        return FINISHED if seen(self._finished.get(pid, [])) else SEARCHING

    # ------------------------------------------------------------------ folding
    def _lazy_state(self, position: int) -> TreeState:
        """The state after ``position`` events with every problem tree still unfolded."""
        state = TimelineState(self)
        for i in self._run_level:
            if i >= position:
                break
            state.apply(self.events[i])
        pids = [pid for pid, first in self._first.items() if first < position]
        pids.sort(key=self._first.__getitem__)
        state.problems = LazyProblems(self._fold_problem, pids)
        if position:
            state.last_seq = max(state.last_seq, self.events[position - 1].seq or 0)
        return state

    def _fold_problem(self, pid: str) -> ProblemTree:
        """pid's tree after the events before ``self.position``, from its nearest checkpoint."""
        # the current position, not the one the lazy state was made at: ``step`` looks a
        # tree up (materialising it) before applying the event at ``self.position``
        position = self.position
        idx = self._by_problem.get(pid, [])
        ckpts = self._checkpoints.setdefault(pid, [])
        k = bisect.bisect_right(ckpts, position, key=lambda c: c[0]) - 1
        if k >= 0:
            start, snap = ckpts[k]
            tree = clone_tree(snap)
        else:
            start, tree = 0, ProblemTree(pid)
        fold = TreeState(problems={pid: tree})
        j = bisect.bisect_left(idx, start)
        done = j
        with gc_paused():  # a bulk fold makes no cycles; see engine/gcpause.py
            while j < len(idx) and idx[j] < position:
                e = self.events[idx[j]]
                fold.apply(e)
                e.release()  # the tree holds what it needs; see Event.release
                j += 1
                if (j - done) % self.interval == 0 and j < len(idx) and idx[j] < position:
                    self._add_checkpoint(pid, idx[j - 1] + 1, tree)
        return fold.problems[pid]

    def _add_checkpoint(self, pid: str, position: int, tree: ProblemTree) -> None:
        ckpts = self._checkpoints.setdefault(pid, [])
        k = bisect.bisect_left(ckpts, position, key=lambda c: c[0])
        if k < len(ckpts) and ckpts[k][0] == position:
            return
        ckpts.insert(k, (position, clone_tree(tree)))

    def step(self) -> tuple[Event, set[str]] | None:
        """Apply the next event; returns it with the node ids it touched (None at the end)."""
        if self.position >= len(self.events):
            return None
        e = self.events[self.position]
        changed = self.state.apply(e)
        e.release()
        self.position += 1
        return e, changed

    def seek(self, target: int) -> bool:
        """Move to ``target`` events applied. Returns True when the state was replaced
        (backwards or a long jump: trees refold lazily), False when it stepped forward."""
        target = max(0, min(target, len(self.events)))
        if self.position <= target <= self.position + self.interval:
            while self.position < target:
                self.step()
            return False
        self.position = target
        self.state = self._lazy_state(target)
        return True

    def current_event(self) -> Event | None:
        return self.events[self.position - 1] if self.position else None
