"""New search form: dataset and subset, strategy, agents, budgets -> a stored run + a process.

The form only writes the run (``create_run`` with the problems and a validated
``RunConfig``) and asks ``engine.jobs`` to start it; the live view then attaches to it
through the store like to any other run. Nothing is ticked when it opens: a search
calls models (maybe paid ones), so the user picks the agents, and a confirmation lists
the problems, agents and budget before the run is created.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input, Label, Select, Static

from bdc_tui import form_memory, services
from bdc_tui.screens.launch_form import FormErrors, LaunchForm, field_row
from bdc_tui.widgets.check_list import CheckList
from engine.errors import BdcError

ANY = "any"
SUBSET_HINT = (
    "Problems are picked in this order: Difficulty, then Start–End (index range, End excluded), "
    "then Sample (N at random, drawn with Seed, order kept), then the first Limit."
)
# (field id, label, placeholder, tooltip)
SUBSET_FIELDS = (
    ("start", "Start", "0", "index of the first problem (0-based)"),
    ("end", "End", "last", "index after the last problem (excluded); empty = to the end"),
    ("sample", "Sample", "all", "pick this many problems at random from the range (Seed decides which)"),
    ("seed", "Seed", "0", "random seed of Sample: the same seed picks the same problems"),
    ("limit", "Limit", "all", "keep at most this many problems (after Sample)"),
)
REMEMBERED = ("path", "start", "end", "sample", "seed", "limit", "rollouts", "max_calls", "max_cost_usd")


def difficulty_options(dataset: str) -> list[tuple[str, str]]:
    """The Difficulty choices of one dataset (HumanEval has none: only "any")."""
    levels = services.dataset_infos().get(dataset, {}).get("difficulties", ())
    return [(ANY, ANY)] + [(d, d) for d in levels if d != "all"]


class NewSearchScreen(LaunchForm):
    LAUNCH_LABEL = "Launch search (ctrl+s)"
    AUTO_FOCUS = "#dataset"

    def __init__(
        self, *, dataset: str | None = None, limit: int | None = None, agents: list[str] | None = None
    ) -> None:
        super().__init__()
        self.prefill_dataset = dataset
        self.prefill_limit = limit
        self.prefill_agents = agents
        self.agent_specs = services.agent_choices()
        self.memory = form_memory.load("search")

    def compose(self) -> ComposeResult:
        datasets = services.dataset_names()
        strategies = services.strategy_names()
        remembered_ds = self.memory.get("dataset")
        ds = next((d for d in (self.prefill_dataset, remembered_ds) if d in datasets), datasets[0])
        yield Header()
        with VerticalScroll(classes="form", id="form-fields"):
            yield field_row(
                (
                    "Dataset",
                    Select([(d, d) for d in datasets], value=ds, allow_blank=False, id="dataset", compact=True),
                ),
                (
                    "Dataset file",
                    self.remembered_input(
                        "path",
                        placeholder="default location",
                        tooltip="a JSONL/JSON/parquet file; empty = the dataset's default location",
                    ),
                ),
            )
            options = difficulty_options(ds)
            self.difficulties = [v for _, v in options]  # what Difficulty offers now
            subset = []
            for name, label, ph, tip in SUBSET_FIELDS:
                field = self.remembered_input(name, "1" if name == "limit" else "", placeholder=ph, tooltip=tip)
                if name == "limit" and self.prefill_limit:
                    field.value = str(self.prefill_limit)
                subset.append((label, field))
            yield field_row(("Difficulty", self.remembered_choice("difficulty", options, ANY)), *subset)
            yield Static(SUBSET_HINT, classes="hint", id="subset-hint")
            yield field_row(
                (
                    "Strategy",
                    self.remembered_choice(
                        "strategy", [(s, s) for s in strategies], "mcts" if "mcts" in strategies else strategies[0]
                    ),
                ),
                ("Rollouts", self.remembered_input("rollouts", "8", tooltip="MCTS rollouts per problem")),
                ("Max LLM calls", self.remembered_input("max_calls", placeholder="no limit")),
                ("Max cost (USD)", self.remembered_input("max_cost_usd", placeholder="no limit")),
            )
            yield Label("Agents (space to tick; none ticked yet)")
            wanted = set(self.prefill_agents or [])
            yield CheckList(
                *[(label, i, spec["name"] in wanted) for i, (label, spec) in enumerate(self.agent_specs)],
                id="agents",
                compact=True,
            )
        yield from self.compose_actions()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "new search"

    @on(Select.Changed, "#dataset")
    def _dataset_changed(self, event: Select.Changed) -> None:
        """Offer only the difficulties the chosen dataset has."""
        select = self.query_one("#difficulty", Select)
        options = difficulty_options(str(event.value))
        keep = select.value if select.value in dict(options).values() else ANY
        select.set_options(options)
        select.value = keep
        self.difficulties = [v for _, v in options]

    def read_form(self) -> dict[str, Any]:
        """The run config as the engine stores it (raises BdcError listing every bad field)."""
        errors = FormErrors()
        val = lambda i: self.query_one(f"#{i}", Input).value  # noqa: E731
        chosen = [self.agent_specs[i][1] for i in self.query_one("#agents", CheckList).selected]
        if not chosen:
            errors.add("choose at least one agent (space ticks the highlighted one)")
        difficulty = self.query_one("#difficulty", Select).value
        subset = {
            "difficulty": None if difficulty in (ANY, Select.BLANK) else str(difficulty),
            "start": errors.int(val("start"), "Start", minimum=0),
            "end": errors.int(val("end"), "End", minimum=1),
            "sample": errors.int(val("sample"), "Sample", minimum=1),
            "seed": errors.int(val("seed"), "Seed") or 0,
            "limit": errors.int(val("limit"), "Limit", minimum=1),
        }
        if subset["start"] is not None and subset["end"] is not None and subset["end"] <= subset["start"]:
            errors.add(f"End ({subset['end']}) must be after Start ({subset['start']})")
        rollouts = errors.int(val("rollouts"), "Rollouts", minimum=1)
        path = val("path").strip() or None
        if path and not Path(path).expanduser().exists():
            errors.add(f"dataset file {path} does not exist")
        form = {
            "dataset": self.query_one("#dataset", Select).value,
            "dataset_path": path,
            "subset": {k: v for k, v in subset.items() if v is not None},
            "strategy": self.query_one("#strategy", Select).value,
            "agents": chosen,
            "search": {"rollouts": rollouts if rollouts is not None else 8},
            "max_calls": errors.int(val("max_calls"), "Max LLM calls", minimum=1),
            "max_cost_usd": errors.float(val("max_cost_usd"), "Max cost", minimum=0),
        }
        errors.raise_if_any()
        return form

    def remember(self) -> None:
        values = {k: self.query_one(f"#{k}", Input).value for k in REMEMBERED}
        values.update(
            dataset=self.query_one("#dataset", Select).value,
            difficulty=self.query_one("#difficulty", Select).value,
            strategy=self.query_one("#strategy", Select).value,
        )
        form_memory.save("search", values)

    def action_submit(self) -> None:
        try:
            form = self.read_form()
            services.build_run_config(form)
        except BdcError as e:
            self.show_error(str(e))
            return
        self.show_error("loading problems…")
        self.prepare(form)

    def failed(self, error: Exception, doing: str) -> None:
        """A bad choice is one line on the form; anything else is also reported and logged."""
        if isinstance(error, BdcError):
            self.show_error(str(error))
        else:
            self.show_error(f"{doing}: {type(error).__name__}: {error}")
            self.app.report(error, doing)

    @work(exclusive=True, group="new-search", exit_on_error=False)
    async def prepare(self, form: dict[str, Any]) -> None:
        """Load the problems (so the confirmation can say how many), then ask."""
        try:
            from engine.search.runner import refuse_unknown_agents  # the preflight `bdc search` runs too

            await asyncio.to_thread(refuse_unknown_agents, form["agents"])
            problems = await asyncio.to_thread(
                services.load_problems, form["dataset"], form["dataset_path"], form["subset"]
            )
            if not problems:
                raise BdcError("the subset selects no problems; widen it")
        except Exception as e:
            self.failed(e, "loading problems")
            return
        self.show_error("")
        self.remember()
        self.confirm_then("Start this search?", summary(form, problems), lambda: self.create_and_launch(form, problems))

    @work(exclusive=True, group="new-search", exit_on_error=False)
    async def create_and_launch(self, form: dict[str, Any], problems: list[Any]) -> None:
        """One run, or one per agent for a single-model strategy (as ``bdc search`` does); the
        first opens live."""
        from engine.search.registry import agent_groups

        run_ids = []
        try:
            for agents in agent_groups(form["strategy"], form["agents"]):
                one = {**form, "agents": agents}
                run_ids.append(
                    await self.app.store.create_run(
                        dataset=form["dataset"],
                        strategy=form["strategy"],
                        agents=[a["name"] for a in agents],
                        config=services.build_run_config(one),
                        problems=problems,
                    )
                )
        except Exception as e:
            self.failed(e, "creating the run")
            return
        self.created_run = run_ids[0]
        pids = [self.app.launch_run(run_id) for run_id in run_ids]
        self.app.pop_screen()
        if pids[0] is not None:
            runs = ", ".join(run_ids)
            self.notify(f"started {runs} with {len(problems)} problem(s) (pid {', '.join(map(str, pids))})")
        self.app.open_run(run_ids[0], "live")


def summary(form: dict[str, Any], problems: list[Any]) -> list[str]:
    """What the confirmation shows: every choice that costs time or money."""
    ids = [str(getattr(p, "id", p)) for p in problems]
    shown = ", ".join(ids[:6]) + (f", … (+{len(ids) - 6})" if len(ids) > 6 else "")
    subset = ", ".join(f"{k}={v}" for k, v in form["subset"].items()) or "whole dataset"
    from engine.search.registry import agent_groups

    runs = len(agent_groups(form["strategy"], form["agents"]))
    budget = []
    if form.get("max_calls"):
        budget.append(f"at most {form['max_calls']} LLM calls")
    if form.get("max_cost_usd") is not None:
        budget.append(f"at most ${form['max_cost_usd']:g}")
    return [
        f"dataset    {form['dataset']}{' from ' + form['dataset_path'] if form['dataset_path'] else ''} ({subset})",
        f"problems   {len(problems)}: {shown}",
        f"strategy   {form['strategy']}, {form['search']['rollouts']} rollouts per problem",
        "agents     "
        + ", ".join(f"{a['name']} ({a['model']})" for a in form["agents"])
        + (f": a single-model method, so {runs} runs, one per agent" if runs > 1 else ""),
        f"budget     {', '.join(budget) if budget else 'no limit on calls or cost'}",
        "",
        "It runs in its own process and keeps running if you quit bdc-tui; x on the runs screen stops it.",
    ]
