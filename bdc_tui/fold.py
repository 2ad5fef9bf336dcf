"""The TUI side of the event fold: what changed per event, and fast seeking for replay.

Live view and replay both fold ``engine.search.tree.TreeState`` with ``apply`` — the one
fold the search itself uses — so they cannot disagree with the engine. What this module
adds is what a *viewer* needs on top:

* ``touched(event)`` — the node ids an event can change, so the tree widget updates only
  those labels instead of rebuilding (thousands of nodes, dozens of events a second);
* ``Timeline`` — the events of a stored run held in memory with periodic checkpoints of
  the fold, so stepping backwards re-folds at most ``interval`` events from the nearest
  checkpoint rather than from the start.
"""

from __future__ import annotations

import bisect
import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from engine.search import events as ev
from engine.search.tree import Node, ProblemTree, TreeState

SOLUTION_KINDS = (ev.SOLUTION_FOUND,)
ERROR_KINDS = (ev.LLM_ERROR, ev.BUDGET_EXHAUSTED)
# the groups the event log and the replay "jump" keys know about
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "prune": (ev.PRUNE,),
    "refine": (ev.REFLECT, ev.REFINE),
    "solution": (ev.SOLUTION_FOUND, ev.PROBLEM_FINISHED),
    "error": ERROR_KINDS,
}


def touched(event: Any, tree: ProblemTree | None = None) -> set[str]:
    """Node ids whose display may change when ``event`` is applied (call before or after)."""
    p = event.payload
    kind = event.kind
    if kind == ev.ROOT:
        return {p.get("node", "0")}
    if kind == ev.SELECT:
        ids = set(p.get("path", ()))
        if tree is not None:
            ids.update(tree.selection)  # the previous path loses its highlight
        return ids
    if kind == ev.EXPAND:
        return {p["parent"], *(c["node"] for c in p.get("children", ()))}
    if kind == ev.BACKUP:
        return set(p.get("q", {})) | set(p.get("n", {})) | set(p.get("path", ()))
    if kind in (ev.SIMULATE, ev.PRUNE, ev.REFLECT, ev.REFINE, ev.SOLUTION_FOUND, ev.PROBLEM_FINISHED):
        node = p.get("node")
        return {node} if node is not None else set()
    return set()


def clone_tree(t: ProblemTree) -> ProblemTree:
    """A copy deep enough for the fold: it only mutates node lists and scalar fields.

    ``copy.deepcopy`` of a 5,000-node tree costs ~100 ms; this costs a few ms because
    solutions and payload dicts are replaced, never mutated, by ``TreeState.apply``.
    """
    nodes: dict[str, Node] = {}
    for nid, n in t.nodes.items():
        c = copy.copy(n)
        c.children = list(n.children)
        c.old_thoughts = list(n.old_thoughts)
        nodes[nid] = c
    out = copy.copy(t)
    out.nodes = nodes
    out.selection = list(t.selection)
    out.errors = list(t.errors)
    return out


def clone_state(s: TreeState) -> TreeState:
    out = copy.copy(s)
    out.problems = {pid: clone_tree(t) for pid, t in s.problems.items()}
    return out


def _share(s: TreeState) -> TreeState:
    """A new TreeState over the *same* problem trees (copy-on-write: see ``Timeline``)."""
    out = copy.copy(s)
    out.problems = dict(s.problems)
    return out


@dataclass
class Timeline:
    """A stored run's events with fold checkpoints; ``seek(i)`` gives the state after i events.

    Checkpoints are copy-on-write: taking one hands the current problem trees to the
    checkpoint and marks them shared; the fold clones a shared tree only when the next
    event for that problem arrives. Problems are searched one after another, so a
    checkpoint costs one clone of the active problem's tree instead of a copy of every
    tree of the run, and restoring one (seeking backwards) copies nothing up front.
    """

    events: Sequence[Any]
    interval: int = 2000
    _checkpoints: list[tuple[int, TreeState]] = field(default_factory=list)
    state: TreeState = field(default_factory=TreeState)
    position: int = 0  # number of events applied to ``state``

    def __post_init__(self) -> None:
        self._checkpoints = [(0, TreeState())]
        self._shared: set[str] = set()  # problem ids whose tree in ``state`` a checkpoint also holds
        self._marks: dict[str, list[int]] = {}
        groups = {k: g for g, kinds in KIND_GROUPS.items() for k in kinds}
        for i, e in enumerate(self.events, 1):
            group = groups.get(e.kind)
            if group is not None:
                self._marks.setdefault(group, []).append(i)

    def __len__(self) -> int:
        return len(self.events)

    def marks(self, group: str) -> list[int]:
        """Positions (1-based: 'after applying event i') of the events in a kind group."""
        return self._marks.get(group, [])

    def milestones(self) -> list[int]:
        return sorted({i for g in ("prune", "refine", "solution") for i in self.marks(g)})

    def next_mark(self, groups: Iterable[str], forward: bool = True) -> int | None:
        positions = sorted({i for g in groups for i in self.marks(g)})
        if forward:
            k = bisect.bisect_right(positions, self.position)
            return positions[k] if k < len(positions) else None
        k = bisect.bisect_left(positions, self.position) - 1
        return positions[k] if k >= 0 else None

    def _checkpoint_if_due(self) -> None:
        if self.position % self.interval == 0 and self.position > self._checkpoints[-1][0]:
            self._checkpoints.append((self.position, _share(self.state)))
            self._shared = set(self.state.problems)

    def step(self) -> Any | None:
        """Apply the next event; returns it (None at the end)."""
        if self.position >= len(self.events):
            return None
        e = self.events[self.position]
        pid = e.problem_id
        if pid in self._shared:
            self.state.problems[pid] = clone_tree(self.state.problems[pid])
            self._shared.discard(pid)
        self.state.apply(e)
        self.position += 1
        self._checkpoint_if_due()
        return e

    def seek(self, target: int) -> bool:
        """Move to ``target`` events applied. Returns True when the state was rebuilt
        (going backwards), False when it only moved forward incrementally."""
        target = max(0, min(target, len(self.events)))
        rebuilt = False
        if target < self.position:
            k = bisect.bisect_right([p for p, _ in self._checkpoints], target) - 1
            pos, snap = self._checkpoints[k]
            self.state, self.position = _share(snap), pos
            self._shared = set(snap.problems)
            rebuilt = True
        while self.position < target:
            self.step()
        return rebuilt

    def current_event(self) -> Any | None:
        return self.events[self.position - 1] if self.position else None
