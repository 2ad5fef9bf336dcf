"""The watchdog of a local engine: no local call waits forever.

A batcher answers its calls from its own threads. If such a thread dies, or a forward pass never
returns, the callers would wait forever (transformers 5.24 changed a private signature under the
continuous batcher and every call of a search did exactly that). The watchdog keeps the engine's
unanswered futures and, a few times a second, asks the batcher two things: ``failure()`` (its
thread is gone: fail every waiter at once with that reason) and ``progress`` (a counter that grows
with every decode step: when it has not moved for ``stall_s`` seconds while calls wait, they fail
with an error naming the stall, and the batcher is told through ``abandon``).

``stall_s`` is ``$BDC_LOCAL_STALL_S`` (default 180): generous, because on a loaded CPU the prefill of
a batch of long prompts is one step that can take tens of seconds.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time

from engine.agents.local.rows import Batcher, LocalGenerationError, deliver

DEFAULT_STALL_S = 180.0


def stall_seconds() -> float:
    """``$BDC_LOCAL_STALL_S`` when it is a positive number, else ``DEFAULT_STALL_S``."""
    try:
        value = float(os.environ.get("BDC_LOCAL_STALL_S", DEFAULT_STALL_S))
    except ValueError:
        return DEFAULT_STALL_S
    return value if value > 0 else DEFAULT_STALL_S


class Watchdog:
    """Fails the tracked futures of ``batcher`` when it dies or stalls (see the module docstring)."""

    def __init__(self, batcher: Batcher, *, stall_s: float | None = None, poll_s: float = 0.25) -> None:
        self.batcher = batcher
        self.stall_s = stall_s if stall_s is not None else stall_seconds()
        self.poll_s = poll_s
        self.fired: list[str] = []  # the reasons it failed calls for (tests, logs)
        self._pending: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_progress = -1
        self._last_change = time.monotonic()
        self._busy_since: float | None = None

    def track(self, fut: concurrent.futures.Future) -> concurrent.futures.Future:
        """Watch ``fut`` until it is answered; returns it."""
        with self._lock:
            self._pending.add(fut)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bdc-local-watchdog", daemon=True)
                self._thread.start()
        fut.add_done_callback(self._forget)
        return fut

    def _forget(self, fut: concurrent.futures.Future) -> None:
        with self._lock:
            self._pending.discard(fut)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    def check(self) -> None:
        """One look at the batcher (the thread calls it every ``poll_s``; tests may call it directly)."""
        now = time.monotonic()
        progress = self.batcher.progress
        if progress != self._last_progress:
            self._last_progress, self._last_change = progress, now
        with self._lock:
            pending = [f for f in self._pending if not f.done()]
        if not pending:
            self._busy_since = None
            return
        if self._busy_since is None:
            self._busy_since = now
        why = self.batcher.failure()
        if why is None:
            idle = now - max(self._last_change, self._busy_since)
            if idle < self.stall_s:
                return
            why = (
                f"no token progress for {idle:.0f} s (limit {self.stall_s:.0f} s, BDC_LOCAL_STALL_S): "
                f"the local generation thread of {type(self.batcher).__name__} is stuck"
            )
            self.batcher.abandon(why)
            self._busy_since = None
        self.fired.append(why)
        for fut in pending:
            deliver(fut, error=LocalGenerationError(why))
