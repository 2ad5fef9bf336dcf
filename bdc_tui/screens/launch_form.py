"""What the new-search and new-evaluation forms share: keys, buttons, launch gating."""

from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button, Input


class LaunchForm(Screen):
    """A form that launches engine work: ctrl+s submits, escape cancels; submitting is
    disabled (not failing) when no launcher is available. Subclasses define
    ``action_submit``."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Cancel"),
        Binding("ctrl+s", "submit", "Launch", priority=True),
    ]

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "submit" and self.app.launcher is None:
            return None
        return True

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.app.pop_screen()

    @on(Button.Pressed, "#launch")
    def _launch(self) -> None:
        self.action_submit()

    def _text(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()
