"""Pause Python's cyclic garbage collector around a bounded bulk build.

Why: folding a stored run allocates hundreds of thousands of long-lived container objects
(events' decoded payloads, tree nodes, solution dicts) and no reference cycles. Each
allocation burst past the collector's thresholds triggers collections that traverse
every tracked object alive, the app's included, so folding 55,000 events spent half its
time or more in the collector (measured by bench/tui.py, whose replay open got ~2x slower
when payloads became slotted dataclasses: unlike dicts of plain values, those are never
untracked). Pausing it for the duration of one fold finds nothing less, only later:
whatever cycles the fold made are collected once the pause ends.

Nested and concurrent pauses (threads) share one counter: the collector comes back when
the last pause ends, and only if it was enabled when the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_restore = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic collector disabled (reference counting still frees)."""
    global _depth, _restore
    with _lock:
        if _depth == 0:
            _restore = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _restore:
                gc.enable()
