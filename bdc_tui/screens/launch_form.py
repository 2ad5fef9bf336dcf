"""What the new-search and new-evaluation forms share: keys, the action bar, error
collection and the confirmation step before anything heavy starts.

A launch goes: ctrl+s (or the button) -> every field is checked and *all* problems are
shown at once -> a confirmation names exactly what will run -> only "yes" creates the
run/job and starts its process. The action bar (error line + buttons) is docked below
the scrolling fields, so it stays on screen at any terminal height.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select, Static

from engine.errors import BdcError


def field_row(*fields: tuple[str, Widget]) -> Horizontal:
    """A row of fields, each under its label (the forms' layout, see app.tcss ``.form .row``)."""
    return Horizontal(*(Vertical(Label(label), widget) for label, widget in fields), classes="row")


class FormErrors:
    """Collects every problem with a form so the user sees them all in one go."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, problem: str) -> None:
        self.problems.append(problem)

    def int(self, value: str, name: str, *, minimum: int | None = None) -> int | None:
        return self._number(value, name, int, "a whole number", minimum)

    def float(self, value: str, name: str, *, minimum: float | None = None) -> float | None:
        return self._number(value, name, float, "a number", minimum)

    def _number(self, value: str, name: str, cast: type, kind: str, minimum: float | None) -> Any:
        """``cast(value)``; None (and a problem noted) when it is not one or is too small."""
        value = value.strip()
        if not value:
            return None
        try:
            out = cast(value)
        except ValueError:
            self.add(f"{name} must be {kind}, not {value!r}")
            return None
        if minimum is not None and out < minimum:
            self.add(f"{name} must be at least {minimum:g}, not {out:g}")
            return None
        return out

    def raise_if_any(self) -> None:
        if self.problems:
            raise BdcError("\n".join(f"• {p}" for p in self.problems))


class LaunchForm(Screen):
    """A form that launches engine work: ctrl+s submits, escape cancels; submitting is
    disabled (not failing) when no launcher is available. Subclasses define
    ``action_submit`` and call ``confirm_then`` before creating anything."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Cancel"),
        Binding("ctrl+s", "submit", "Launch", priority=True),
    ]
    LAUNCH_LABEL = "Launch (ctrl+s)"
    memory: dict[str, Any]  # the form's remembered values (``form_memory``), loaded by the subclass

    def remembered_input(self, key: str, default: str = "", placeholder: str = "", tooltip: str | None = None) -> Input:
        """A compact text field ``#key`` holding its remembered value (else ``default``)."""
        value = str(self.memory.get(key, default))
        return Input(value, placeholder=placeholder, id=key, compact=True, tooltip=tooltip)

    def remembered_choice(
        self,
        key: str,
        options: list[tuple[str, str]],
        default: str,
        *,
        remembered: bool = True,
        tooltip: str | None = None,
    ) -> Select:
        """A compact drop-down ``#key`` on its remembered value (when it is still one of the options)."""
        values = [v for _, v in options]
        kept = self.memory.get(key) if remembered else None
        return Select(
            options, value=kept if kept in values else default, allow_blank=False, id=key, compact=True, tooltip=tooltip
        )

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "submit" and self.app.launcher is None:
            return None
        return True

    def compose_actions(self) -> ComposeResult:
        """The error line and buttons, docked under the scrolling fields."""
        with Vertical(id="form-actions"):
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button(self.LAUNCH_LABEL, variant="success", id="launch", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def show_error(self, text: str) -> None:
        error = self.query_one("#form-error", Static)
        error.update(text)
        error.set_class(bool(text), "-shown")

    def confirm_then(self, title: str, lines: list[str], go: Callable[[], None]) -> None:
        """Ask before starting heavy work; ``go`` runs only on yes."""
        from bdc_tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                go()
            else:
                self.show_error("not started")

        self.app.push_screen(ConfirmScreen(title, details="\n".join(lines), yes_label="Start", danger=False), answered)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.app.pop_screen()

    @on(Button.Pressed, "#launch")
    def _launch(self) -> None:
        if self.app.launcher is None:
            self.show_error("cannot launch here: engine.jobs (the process launcher) is not available")
            return
        self.action_submit()

    def _text(self, selector: str) -> str:
        return self.query_one(selector, Input).value.strip()
