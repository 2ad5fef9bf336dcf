"""Reap the engine processes the TUI starts, so finished ones don't linger as zombies.

``engine.jobs`` starts each search or job detached (its own session) and hands back only
the pid; the TUI is still its parent, so when it ends it stays a ``<defunct>`` entry
until someone waits for it. A SIGCHLD handler would fight asyncio and subprocess over
the signal; instead the app polls ``waitpid(pid, WNOHANG)`` for the pids it launched —
non-blocking, and touching no process it did not start.
"""

from __future__ import annotations

import os


class ChildReaper:
    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.exit_codes: dict[int, int] = {}

    def watch(self, pid: int) -> None:
        self.pids.add(int(pid))

    def reap(self) -> list[int]:
        """Wait (without blocking) for every watched child that has ended; their pids."""
        reaped = []
        for pid in sorted(self.pids):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not our child, or already waited for elsewhere
                self.pids.discard(pid)
                continue
            except OSError:
                continue
            if done:
                self.pids.discard(pid)
                self.exit_codes[pid] = os.waitstatus_to_exitcode(status)
                reaped.append(pid)
        return reaped
