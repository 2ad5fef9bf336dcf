"""Shown instead of the app when the run store cannot be used (corrupt, newer schema...).

A ``StoreError`` carries a message the user can act on; a traceback would not help.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static


class ErrorScreen(Screen):
    BINDINGS = [Binding("q,escape", "app.quit", "Quit")]

    def __init__(self, title: str, message: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(classes="dialog", id="error-box"):
            yield Static(f"[b red]{self.title_text}[/]", id="error-title")
            yield Static(self.message, id="error-message", markup=False)
            yield Static(
                "Point bdc-tui at another file with --db FILE (or BDC_DB), then start it again.", classes="hint"
            )
        yield Footer()
