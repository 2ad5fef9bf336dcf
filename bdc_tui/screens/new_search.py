"""New search form: dataset and subset, strategy, agents, budgets -> a stored run + a process.

The form only writes the run (``create_run`` with the problems and a validated
``RunConfig``) and asks ``engine.jobs`` to start it; the live view then attaches to it
through the store like to any other run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, Label, Select, SelectionList, Static

from bdc_tui import services
from bdc_tui.screens.launch_form import LaunchForm
from engine.errors import BdcError


def _int(value: str, name: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise BdcError(f"{name} must be a whole number, not {value!r}") from None


def _float(value: str, name: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise BdcError(f"{name} must be a number, not {value!r}") from None


class NewSearchScreen(LaunchForm):
    def __init__(self, *, dataset: str | None = None, limit: int | None = None, agents: list[str] | None = None) -> None:
        super().__init__()
        self.prefill_dataset = dataset
        self.prefill_limit = limit
        self.prefill_agents = agents
        self.agent_specs = services.agent_choices()

    def compose(self) -> ComposeResult:
        datasets = services.dataset_names()
        strategies = services.strategy_names()
        ds = self.prefill_dataset if self.prefill_dataset in datasets else datasets[0]
        yield Header()
        with VerticalScroll(classes="form"):
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Dataset")
                    yield Select([(d, d) for d in datasets], value=ds, allow_blank=False, id="dataset")
                with Vertical():
                    yield Label("Dataset file (optional; default location otherwise)")
                    yield Input(placeholder="path/to/data.jsonl", id="path")
            with Horizontal(classes="row"):
                for name, ph in (("difficulty", "e.g. introductory"), ("start", "0"), ("end", ""), ("sample", ""), ("seed", "0")):
                    with Vertical():
                        yield Label(name.capitalize())
                        yield Input(placeholder=ph, id=name)
                with Vertical():
                    yield Label("Limit")
                    yield Input(value=str(self.prefill_limit or 1), id="limit")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Strategy")
                    default = "mcts" if "mcts" in strategies else strategies[0]
                    yield Select([(s, s) for s in strategies], value=default, allow_blank=False, id="strategy")
                with Vertical():
                    yield Label("Rollouts")
                    yield Input(value="8", id="rollouts")
                with Vertical():
                    yield Label("Max LLM calls")
                    yield Input(placeholder="no limit", id="max_calls")
                with Vertical():
                    yield Label("Max cost (USD)")
                    yield Input(placeholder="no limit", id="max_cost_usd")
            yield Label("Agents (space to toggle)")
            wanted = set(self.prefill_agents or [])
            yield SelectionList(
                *[(label, i, (spec["name"] in wanted) if wanted else i < 2) for i, (label, spec) in enumerate(self.agent_specs)],
                id="agents",
            )
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Launch search (ctrl+s)", variant="success", id="launch")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "new search"
        self.query_one("#dataset", Select).focus()

    def read_form(self) -> dict[str, Any]:
        """The run config as the engine stores it (raises BdcError on a bad field)."""
        val = lambda i: self.query_one(f"#{i}", Input).value  # noqa: E731
        chosen = [self.agent_specs[i][1] for i in self.query_one("#agents", SelectionList).selected]
        if not chosen:
            raise BdcError("choose at least one agent")
        subset = {
            "difficulty": val("difficulty").strip() or None,
            "start": _int(val("start"), "start"),
            "end": _int(val("end"), "end"),
            "sample": _int(val("sample"), "sample"),
            "seed": _int(val("seed"), "seed") or 0,
            "limit": _int(val("limit"), "limit"),
        }
        rollouts = _int(val("rollouts"), "rollouts")
        return {
            "dataset": self.query_one("#dataset", Select).value,
            "dataset_path": val("path").strip() or None,
            "subset": {k: v for k, v in subset.items() if v is not None},
            "strategy": self.query_one("#strategy", Select).value,
            "agents": chosen,
            "search": {"rollouts": rollouts if rollouts is not None else 8},
            "max_calls": _int(val("max_calls"), "max calls"),
            "max_cost_usd": _float(val("max_cost_usd"), "max cost"),
        }

    def action_submit(self) -> None:
        error = self.query_one("#form-error", Static)
        try:
            form = self.read_form()
        except BdcError as e:
            error.update(str(e))
            return
        error.update("loading problems…")
        self.create_and_launch(form)

    @work(exclusive=True, group="new-search", exit_on_error=False)
    async def create_and_launch(self, form: dict[str, Any]) -> None:
        error = self.query_one("#form-error", Static)
        try:
            config = services.build_run_config(form)
            from engine.search.runner import refuse_unknown_agents  # the preflight `bdc search` runs too

            await asyncio.to_thread(refuse_unknown_agents, form["agents"])
            problems = await asyncio.to_thread(services.load_problems, form["dataset"], form["dataset_path"], form["subset"])
            if not problems:
                raise BdcError("the subset selects no problems; widen it")
            run_id = await self.app.store.create_run(
                dataset=form["dataset"], strategy=form["strategy"], agents=[a["name"] for a in form["agents"]],
                config=config, problems=problems,
            )
        except BdcError as e:
            error.update(str(e))
            return
        except Exception as e:
            error.update(f"{type(e).__name__}: {e}")
            self.app.report(e, "creating the run")
            return
        pid = self.app.launch_run(run_id)
        self.app.pop_screen()
        if pid is not None:
            self.notify(f"started {run_id} with {len(problems)} problem(s) (pid {pid})")
        self.app.open_run(run_id, "live")
