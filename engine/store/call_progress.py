"""LLM calls in flight, in the store: "smollm2 writing a solution for #12 · 143 tok".

``CallProgressTable`` is the run's ``ProgressSink`` (engine.agents.progress): a call gets a row in
``call_progress`` the moment it is sent, its token count is written at most once every
``interval_s`` (the generation thread only stores a number; the write is scheduled on the event
loop), and the row is deleted when the call ends. The TUI and the headless progress line poll
``calls_in_flight``. Per-token events would bloat the append-only log; this table stays as small
as the number of calls running.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from typing import Any

from engine.agents.types import CallContext

INTERVAL_S = 1.0
# a row not updated for this long is no call in flight: a local model's count is written every
# second, and a remote call ends within its timeout (180 s) times its tries (4) plus back-off
STALE_S = 20 * 60.0
_ids = itertools.count(1)

_INSERT = (
    "INSERT OR REPLACE INTO call_progress (call_id, run_id, problem_id, node_id, policy, model, kind, tokens, "
    "started_at, updated_at) VALUES (?,?,?,?,?,?,?,0,?,?)"
)
_UPDATE = "UPDATE call_progress SET tokens=?, updated_at=? WHERE call_id=?"
_DELETE = "DELETE FROM call_progress WHERE call_id=?"

# what a call of each kind is doing, for the one-line description
DOING = {
    "thought": "proposing thoughts",
    "solution": "writing a solution",
    "reflection": "reflecting",
    "refinement": "refining a thought",
}


class _Shown:
    """One call's row; ``tokens`` is called from the generation thread."""

    def __init__(self, table: CallProgressTable, call_id: str) -> None:
        self.table = table
        self.call_id = call_id
        self.count = 0
        self.written = 0
        self.last_write = time.monotonic()
        self.pending = False
        self.ended = False
        self.lock = threading.Lock()

    def tokens(self, n: int) -> None:
        with self.lock:
            self.count = n
            due = not self.pending and not self.ended and time.monotonic() - self.last_write >= self.table.interval_s
            if due:
                self.pending = True
        if due:
            self.table.loop.call_soon_threadsafe(self._write)

    def _write(self) -> None:
        with self.lock:
            self.pending = False
            if self.ended or self.count == self.written:
                return
            self.written, self.last_write = self.count, time.monotonic()
            n = self.count
        self.table.write(_UPDATE, (n, time.time(), self.call_id))

    def end(self) -> None:
        with self.lock:
            self.ended = True
        self.table.write(_DELETE, (self.call_id,))


class CallProgressTable:
    """The store's ``call_progress`` table as a ``ProgressSink``; created on the event loop."""

    def __init__(self, store: Any, *, interval_s: float = INTERVAL_S) -> None:
        self.store = store
        self.interval_s = interval_s
        self.loop = asyncio.get_running_loop()
        self.prefix = f"{os.getpid()}-{id(self):x}"

    def write(self, sql: str, params: tuple) -> None:
        try:
            self.store._enqueue(sql, params)
        except Exception:  # noqa: BLE001 - a store that cannot write says so on the run's own writes
            pass

    def begin(self, ctx: CallContext, policy: str, model: str, kind: str) -> _Shown:
        call_id = f"{self.prefix}-{next(_ids)}"
        now = time.time()
        self.write(_INSERT, (call_id, ctx.run_id, ctx.problem_id, ctx.node_id, policy, model, kind, now, now))
        return _Shown(self, call_id)


def progress_sink(store: Any) -> CallProgressTable | None:
    """A CallProgressTable on ``store`` when it is a writable run store on this loop, else None
    (scripted sinks, a Ray actor's remote sink)."""
    from engine.store.store import Store

    if not isinstance(store, Store) or store.readonly:
        return None
    try:
        return CallProgressTable(store)
    except RuntimeError:  # no running loop
        return None


def clear_calls(store: Any, run_id: str) -> None:
    """Forget every row of ``run_id``: its runner starts, resumes or ends, so none of them is a call
    running now (a crashed process never deleted its rows)."""
    store._enqueue("DELETE FROM call_progress WHERE run_id=?", (run_id,))


async def calls_in_flight(store: Any, run_id: str, *, now: float | None = None) -> list[dict[str, Any]]:
    """The calls of ``run_id`` running now, oldest first (``[]`` on a store older than migration 6).

    Only while the run is 'running', and only rows touched within ``STALE_S``: a process that
    died (kill -9, a lost host) leaves its rows behind until the run is resumed or marked
    interrupted, and they must not read as calls in flight meanwhile."""
    since = (time.time() if now is None else now) - STALE_S
    try:
        return await store._fetchdicts(
            "SELECT c.call_id, c.problem_id, c.node_id, c.policy, c.model, c.kind, c.tokens, c.started_at, "
            "c.updated_at FROM call_progress c JOIN runs r ON r.id = c.run_id "
            "WHERE c.run_id=? AND r.status='running' AND c.updated_at >= ? ORDER BY c.started_at",
            (run_id, since),
        )
    except Exception as e:  # noqa: BLE001 - an old store has no such table: nothing to show
        if "no such table" in str(e):
            return []
        raise


def describe(call: dict[str, Any], *, now: float | None = None) -> str:
    """``smollm2 writing a solution for #12 · 143 tok · 9s``."""
    doing = DOING.get(str(call.get("kind")), "answering")
    where = f" for #{call['node_id']}" if call.get("node_id") not in (None, "") else ""
    secs = max(0.0, (now if now is not None else time.time()) - float(call.get("started_at") or 0))
    return f"{call.get('policy')} {doing}{where} · {int(call.get('tokens') or 0)} tok · {secs:.0f}s"
