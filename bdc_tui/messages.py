"""Messages screens and widgets exchange (Textual's message bus instead of direct calls)."""

from __future__ import annotations

from textual.message import Message


class OpenRun(Message):
    """Ask the app to show a run: live (``mode='live'``), ``'replay'`` or ``'log'``."""

    def __init__(self, run_id: str, mode: str = "live", seq: int | None = None) -> None:
        self.run_id = run_id
        self.mode = mode
        self.seq = seq
        super().__init__()
