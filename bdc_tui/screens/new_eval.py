"""New evaluation form: solvers × dataset subset -> an 'eval' job run by ``engine.jobs``."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select, SelectionList, Static

from bdc_tui import services
from bdc_tui.screens.new_search import _int
from engine.errors import BdcError


class NewEvalScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Cancel"),
        Binding("ctrl+s", "submit", "Launch", priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.agent_specs = services.agent_choices()

    def compose(self) -> ComposeResult:
        datasets = services.dataset_names()
        yield Header()
        with VerticalScroll(classes="form"):
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Dataset")
                    yield Select([(d, d) for d in datasets], value=datasets[0], allow_blank=False, id="dataset")
                with Vertical():
                    yield Label("Difficulty (optional)")
                    yield Input(id="difficulty")
                with Vertical():
                    yield Label("Limit")
                    yield Input(value="20", id="limit")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Adapters (comma-separated folders, optional)")
                    yield Input(placeholder="adapters/disenlora, adapters/sft-all", id="adapters")
                with Vertical():
                    yield Label("Samples per problem")
                    yield Input(value="1", id="samples")
            yield Label("Solvers (space to toggle)")
            yield SelectionList(*[(label, i, i == 0) for i, (label, _) in enumerate(self.agent_specs)], id="solvers")
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Launch evaluation (ctrl+s)", variant="success", id="launch")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "new evaluation"

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

    def read_form(self) -> dict[str, Any]:
        solvers = [self.agent_specs[i][1] for i in self.query_one("#solvers", SelectionList).selected]
        adapters = [a.strip() for a in self.query_one("#adapters", Input).value.split(",") if a.strip()]
        if not solvers and not adapters:
            raise BdcError("choose at least one solver or adapter")
        subset = {"difficulty": self.query_one("#difficulty", Input).value.strip() or None,
                  "limit": _int(self.query_one("#limit", Input).value, "limit")}
        return {
            "dataset": self.query_one("#dataset", Select).value,
            "subset": {k: v for k, v in subset.items() if v is not None},
            "solvers": solvers,
            "adapters": adapters,
            "samples": _int(self.query_one("#samples", Input).value, "samples") or 1,
        }

    def action_submit(self) -> None:
        try:
            config = self.read_form()
        except BdcError as e:
            self.query_one("#form-error", Static).update(str(e))
            return
        self.create_and_launch(config)

    @work(exclusive=True, group="new-eval", exit_on_error=False)
    async def create_and_launch(self, config: dict[str, Any]) -> None:
        try:
            job_id = await self.app.store.create_job("eval", config)
        except Exception as e:
            self.app.report(e, "creating the evaluation job")
            return
        pid = self.app.launch_job(job_id)
        self.app.pop_screen()
        if pid is not None:
            self.notify(f"evaluation {job_id} started (pid {pid})")
        self.app.action_jobs()
