"""A yes/no modal: deleting a run, starting a search or an evaluation.

``details`` (what exactly will happen) scrolls inside the dialog, so a long list of
solvers or agents never pushes the buttons off a small terminal.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, question: str, *, details: str = "", yes_label: str = "Yes", danger: bool = True) -> None:
        super().__init__()
        self.question = question
        self.details = details
        self.yes_label = yes_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Static(self.question, id="confirm-question")
            if self.details:
                with VerticalScroll(id="confirm-details"):
                    yield Static(self.details, markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes_label} (y)", variant="error" if self.danger else "success", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        # the safe answer has the focus: enter alone never starts or deletes anything
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    def plain_text(self) -> str:
        return f"{self.question}\n{self.details}"
