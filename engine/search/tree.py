"""TreeState: the search tree as a pure fold of the event log.

The search, the resume logic and every viewer (live and replay) build their tree the same
way: ``state.apply(event)`` for each event in order. Nothing else mutates it, which is
what makes "replaying the events rebuilds exactly the tree the search held" true by
construction (and tested).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from engine.gcpause import gc_paused
from engine.search import events as ev

if TYPE_CHECKING:
    from engine.store.records import Event

# ``ProblemTree.progress``: a problem's standing
SOLVED = "solved"
FINISHED = "finished"
SEARCHING = "searching"


@dataclass(slots=True)
class Node:
    id: str
    parent: str | None
    thought: str
    policy: str | None
    prior: float
    depth: int
    terminal: bool = False
    children: list[str] = field(default_factory=list)
    visits: int = 0
    value: float = 0.0
    pass_rate: float | None = None  # PR(S), eq. 10; None until simulated
    # the two below are replaced whole by the fold, never changed in place: a node shares them
    # with its checkpoint copies, and a node without any holds no list of its own (a 55,000-event
    # replay keeps ~70,000 nodes, each a container the garbage collector walks)
    solutions: Sequence[dict[str, Any]] = ()
    pruned: bool = False
    refinements: int = 0
    old_thoughts: Sequence[str] = ()
    summary: str | None = None  # the reflection that motivated the last refine
    created_rollout: int = 0

    def clone(self) -> Node:
        """A copy the fold can mutate: its own child list; solutions and old thoughts (which the
        fold replaces, never mutates) shared. ``copy.copy`` costs ~5x more per node."""
        return Node(
            self.id,
            self.parent,
            self.thought,
            self.policy,
            self.prior,
            self.depth,
            self.terminal,
            list(self.children),
            self.visits,
            self.value,
            self.pass_rate,
            self.solutions,
            self.pruned,
            self.refinements,
            self.old_thoughts,
            self.summary,
            self.created_rollout,
        )

    @property
    def simulated(self) -> bool:
        return self.pass_rate is not None

    @property
    def expanded(self) -> bool:
        return bool(self.children)

    def best_solution(self) -> dict[str, Any] | None:
        return max(self.solutions, key=lambda s: s.get("pass_rate", 0.0), default=None)

    def solves_public(self) -> bool:
        """One of its solutions passed every public test (refining it would throw that away)."""
        return any(s.get("total") and s.get("passed") == s.get("total") for s in self.solutions)


@dataclass
class ProblemTree:
    problem_id: str
    nodes: dict[str, Node] = field(default_factory=dict)
    selection: list[str] = field(default_factory=list)  # the most recent select path
    rollouts_done: int = 0
    solved_by: str | None = None  # node whose solution passed all public tests
    solution: dict[str, Any] | None = None  # that solution (policy, code, public_pass_rate), kept for good
    finished: dict[str, Any] | None = None
    refinements: int = 0
    prunes: int = 0
    errors: list[str] = field(default_factory=list)
    budget_exhausted: str | None = None

    @property
    def root(self) -> Node | None:
        return self.nodes.get("0")

    def progress(self) -> str:
        """``SOLVED``, ``FINISHED`` (unsolved) or ``SEARCHING`` (see ``TreeState.progress``)."""
        if self.solved_by is not None:
            return SOLVED
        return FINISHED if self.finished is not None else SEARCHING

    def path_thoughts(self, node_id: str) -> list[str]:
        """The thoughts from the root (exclusive) down to ``node_id`` (inclusive)."""
        out: list[str] = []
        node: Node | None = self.nodes[node_id]
        while node is not None and node.parent is not None:
            out.append(node.thought)
            node = self.nodes[node.parent]
        return out[::-1]

    def best_node(self) -> Node | None:
        """The node holding the best solution on public tests (ties: shallower, earlier)."""
        best: Node | None = None
        best_key: tuple = ()
        for n in self.nodes.values():
            sol = n.best_solution()
            if sol is None:
                continue
            key = (sol.get("pass_rate", 0.0), -n.depth, -int(n.id) if n.id.isdigit() else 0)
            if best is None or key > best_key:
                best, best_key = n, key
        return best

    def signature(self) -> list[tuple]:
        """A comparable summary of the whole tree (used to test fold == search tree)."""
        return sorted(
            (
                n.id,
                n.parent,
                n.thought,
                n.policy,
                round(n.prior, 9),
                n.depth,
                n.terminal,
                tuple(n.children),
                n.visits,
                round(n.value, 9),
                None if n.pass_rate is None else round(n.pass_rate, 9),
                n.pruned,
                n.refinements,
                tuple(n.old_thoughts),
            )
            for n in self.nodes.values()
        )


@dataclass
class TreeState:
    """All problem trees of one run, plus run-level status."""

    problems: dict[str, ProblemTree] = field(default_factory=dict)
    last_seq: int = 0
    status: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def tree(self, problem_id: str) -> ProblemTree:
        t = self.problems.get(problem_id)
        if t is None:
            t = self.problems[problem_id] = ProblemTree(problem_id)
        return t

    def apply_all(self, events: Any) -> TreeState:
        with gc_paused():  # a bulk fold makes no cycles; see engine/gcpause.py
            for e in events:
                self.apply(e)
        return self

    def progress(self, problem_id: str) -> str | None:
        """Where a problem stands: ``SOLVED`` (a solution passed every public test), ``FINISHED``
        (finished unsolved), ``SEARCHING``, or None when it has no event yet. A viewer marks
        every problem with this; a lazily folded state (``engine.search.timeline``) answers it
        without folding the trees it does not show."""
        t = self.problems.get(problem_id)
        return None if t is None else t.progress()

    def apply(self, event: Event) -> set[str]:
        """Fold one event; returns the ids of the nodes whose display may have changed
        (a viewer redraws only those: thousands of nodes, dozens of events a second)."""
        kind, p = event.kind, event.payload
        self.last_seq = max(self.last_seq, event.seq or 0)
        if kind == ev.RUN_STARTED:
            self.status, self.config = "running", p.config
            return set()
        if kind == ev.RUN_FINISHED:
            self.status = p.status
            return set()
        if event.problem_id is None:
            return set()
        handler = _HANDLERS.get(kind)
        if handler is None:
            return set()
        return handler(self.tree(event.problem_id), p)


def _problem_started(t: ProblemTree, p: ev.ProblemStarted) -> set[str]:
    """A problem's search (re)starts: a retried problem (``bdc resume`` after a crash or after
    every LLM call failed) starts over from an empty tree. Reset in place: the journal holds it."""
    dropped = set(t.nodes)
    fresh = ProblemTree(t.problem_id)
    for f in fields(ProblemTree):
        setattr(t, f.name, getattr(fresh, f.name))
    return dropped


def _root(t: ProblemTree, p: ev.Root) -> set[str]:
    t.nodes[p.node] = Node(id=p.node, parent=None, thought="", policy=None, prior=1.0, depth=0)
    return {p.node}


def _select(t: ProblemTree, p: ev.Select) -> set[str]:
    changed = set(t.selection) | set(p.path)  # the previous path loses its highlight
    t.selection = list(p.path)
    return changed


def _expand(t: ProblemTree, p: ev.Expand) -> set[str]:
    parent = t.nodes[p.parent]
    for c in p.children:
        t.nodes[c.node] = Node(
            id=c.node,
            parent=parent.id,
            thought=c.thought,
            policy=c.policy,
            prior=float(c.prior),
            depth=parent.depth + 1 if c.depth is None else int(c.depth),
            terminal=bool(c.terminal),
            created_rollout=p.rollout,
        )
        parent.children.append(c.node)
    return {p.parent, *(c.node for c in p.children)}


def _simulate(t: ProblemTree, p: ev.Simulate) -> set[str]:
    n = t.nodes[p.node]
    n.pass_rate = float(p.pass_rate)
    n.solutions = [s.to_dict() for s in p.solutions]
    return {p.node}


def _backup(t: ProblemTree, p: ev.Backup) -> set[str]:
    for nid, q in p.q.items():
        t.nodes[nid].value = float(q)
    for nid, n in p.n.items():
        t.nodes[nid].visits = int(n)
    return set(p.q) | set(p.n) | set(p.path)


def _prune(t: ProblemTree, p: ev.Prune) -> set[str]:
    t.nodes[p.node].pruned = True
    t.prunes += 1
    return {p.node}


def _reflect(t: ProblemTree, p: ev.Reflect) -> set[str]:
    t.nodes[p.node].summary = p.summary
    return {p.node}


def _refine(t: ProblemTree, p: ev.Refine) -> set[str]:
    """In-place replacement: same id and position, new thought, fresh statistics."""
    n = t.nodes[p.node]
    n.old_thoughts = [*n.old_thoughts, p.old_thought]
    n.thought = p.new_thought
    n.summary = p.summary if p.summary is not None else n.summary
    n.policy = p.policy if p.policy is not None else n.policy
    n.refinements += 1
    n.pruned = False
    n.pass_rate = None
    n.solutions = ()
    n.visits = 0
    n.value = 0.0
    for cid in n.children:  # a new thought invalidates the old subtree
        _drop_subtree(t, cid)
    n.children = []
    t.refinements += 1
    return {p.node}


def _drop_subtree(t: ProblemTree, nid: str) -> None:
    node = t.nodes.pop(nid, None)
    if node is not None:
        for cid in node.children:
            _drop_subtree(t, cid)


def _solution_found(t: ProblemTree, p: ev.SolutionFound) -> set[str]:
    if t.solved_by is None:
        t.solved_by = p.node
        t.solution = {"policy": p.policy, "code": p.code, "pass_rate": p.public_pass_rate}
    return {p.node}


def _rollout_finished(t: ProblemTree, p: ev.RolloutFinished) -> set[str]:
    t.rollouts_done = max(t.rollouts_done, int(p.rollout))
    return set()


def _llm_error(t: ProblemTree, p: ev.LLMError) -> set[str]:
    t.errors.append(f"{p.policy}: {p.message}")
    return set()


def _budget(t: ProblemTree, p: ev.BudgetExhausted) -> set[str]:
    t.budget_exhausted = p.reason
    return set()


def _problem_finished(t: ProblemTree, p: ev.ProblemFinished) -> set[str]:
    t.finished = p.to_dict()
    return {p.node} if p.node is not None else set()


_HANDLERS: dict[str, Callable[[ProblemTree, Any], set[str]]] = {
    ev.PROBLEM_STARTED: _problem_started,
    ev.ROOT: _root,
    ev.SELECT: _select,
    ev.EXPAND: _expand,
    ev.SIMULATE: _simulate,
    ev.BACKUP: _backup,
    ev.PRUNE: _prune,
    ev.REFLECT: _reflect,
    ev.REFINE: _refine,
    ev.SOLUTION_FOUND: _solution_found,
    ev.ROLLOUT_FINISHED: _rollout_finished,
    ev.LLM_ERROR: _llm_error,
    ev.BUDGET_EXHAUSTED: _budget,
    ev.PROBLEM_FINISHED: _problem_finished,
}
