"""Journal: how a problem's events are written, folded and, on resume, replayed.

The journal owns the problem's tree and is the only way to change it: ``emit`` writes an
event to the store *and* folds it into the tree with ``TreeState.apply`` (event sourcing), so
the tree a viewer rebuilds from the log is the tree the search held, by construction.

It also makes resume cheap and exact. A resumed problem is searched again from the start,
deterministically, with the problem's stored events: while stored events are left, ``emit``
checks that the search re-derived the same event and folds the stored one without writing
it, and ``recorded`` hands the expensive operations (thoughts, solutions + sandbox,
reflections) their stored results instead of calling a policy. Once the stored events are
used up the search goes on live; replies that were cached before the crash come from the
LLM cache for free. Given the same replies, the final tree equals the tree of an
uninterrupted run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from engine.errors import BdcError
from engine.search import events as ev
from engine.search.tree import ProblemTree, TreeState
from engine.store.records import Event


class ResumeDivergence(BdcError):
    """The re-executed search produced an event different from the stored one."""


def _norm(payload: Any) -> Any:
    return json.loads(json.dumps(ev.payload_dict(payload), default=str))


class Journal:
    """The event log of one problem under search: emit live, or check against and replay stored events."""

    def __init__(
        self, *, store: Any, run_id: str, problem_id: str, state: TreeState, stored: Iterable[Event] = ()
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.problem_id = problem_id
        self.state = state
        self.tree: ProblemTree = state.tree(problem_id)
        self._stored: list[Event] = list(stored)
        self._pos = 0
        self._used: set[int] = set()  # indices of stored events whose results were reused
        self._next_id = 1
        for e in self._stored:  # ids are never reused, even for nodes a refine dropped
            if e.kind == ev.EXPAND:
                for c in e.payload.children:
                    if c.node.isdigit():
                        self._next_id = max(self._next_id, int(c.node) + 1)
        # a resumed problem's wall time includes the time it was searched before the
        # interruption (first to last stored event), not the time the run lay dead
        stamps = [e.ts for e in self._stored if e.ts]
        self.started = time.monotonic() - (max(stamps) - min(stamps) if stamps else 0.0)

    @property
    def replaying(self) -> bool:
        return self._pos < len(self._stored)

    def _next_is_error(self) -> bool:
        return self._pos < len(self._stored) and self._stored[self._pos].kind == ev.LLM_ERROR

    def _live(self, kind: str, payload: Any, node_id: str | None) -> None:
        seq = (
            self.store.emit(self.run_id, kind, payload, problem_id=self.problem_id, node_id=node_id)
            if self.store
            else 0
        )
        self.state.apply(Event(self.run_id, seq, time.time(), kind, self.problem_id, node_id, payload))

    def _replay_next(self) -> Event:
        stored = self._stored[self._pos]
        self._pos += 1
        self.state.apply(stored)
        return stored

    def emit(self, kind: str, payload: Any, node_id: str | None = None) -> None:
        """Record ``kind`` and fold it into the tree (or, while replaying, check and fold the stored one).

        ``payload``: the kind's typed payload, or a dict validated against it."""
        payload = ev.payload_for(kind, payload)
        if kind == ev.LLM_ERROR:
            # informational and not re-derived on replay: a stored one stands for it, else write it
            if self._next_is_error():
                self._replay_next()
            else:
                self._live(kind, payload, node_id)
            return
        while self._next_is_error():  # stored errors fold as they come
            self._replay_next()
        if not self.replaying:
            self._live(kind, payload, node_id)
            return
        stored = self._stored[self._pos]
        if stored.kind != kind or _norm(stored.payload) != _norm(payload):
            raise ResumeDivergence(
                f"problem {self.problem_id}: resumed search diverged from the stored events at seq "
                f"{stored.seq} (stored {stored.kind}, re-derived {kind}); the replies or the code changed "
                "since the run was interrupted"
            )
        self._replay_next()

    def recorded(self, kind: str, **match: Any) -> Any | None:
        """The payload of a not-yet-reused stored ``kind`` event matching ``match`` (resume only)."""
        for i in range(self._pos, len(self._stored)):
            e = self._stored[i]
            if i in self._used or e.kind != kind:
                continue
            if all(getattr(e.payload, k) == v for k, v in match.items()):
                self._used.add(i)
                return e.payload
        return None

    def new_id(self) -> str:
        nid = str(self._next_id)
        self._next_id += 1
        return nid

    def reserve_id(self, node_id: str) -> None:
        """A stored node id is taken: later ``new_id`` calls go past it."""
        if node_id.isdigit():
            self._next_id = max(self._next_id, int(node_id) + 1)
