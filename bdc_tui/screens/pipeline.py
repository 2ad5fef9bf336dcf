"""The rest of the pipeline from the TUI: export → cluster → train experts → hypernetwork → evaluate.

Each step works in one pipeline folder (``<data dir>/pipeline/<stamp>``): the export writes
``examples.jsonl`` there; clustering writes ``clusters.json``; the experts go to ``experts/``
and the hypernetwork to ``disenlora/`` (the layout ``bdc cluster|train --out`` uses, so the
CLI can carry on from any step). Export reads the store and takes a moment, so it runs here;
the rest are background jobs of the existing kinds (engine/jobs/kinds.py) with progress on the
jobs screen, each started only after a confirmation.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from bdc_tui.screens.confirm import ConfirmScreen
from engine.paths import data_dir

EXAMPLES = "examples.jsonl"


def pipeline_root() -> Path:
    return data_dir() / "pipeline"


def latest_folder() -> Path | None:
    """The newest pipeline folder (names are sortable stamps)."""
    root = pipeline_root()
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return folders[-1] if folders else None


def stage_of(folder: Path | None) -> dict[str, bool]:
    """Which steps' outputs the folder holds."""
    if folder is None:
        return {"examples": False, "clusters": False, "experts": False, "hyper": False}
    return {
        "examples": (folder / EXAMPLES).is_file(),
        "clusters": (folder / "clusters.json").is_file(),
        "experts": any((folder / "experts").glob("expert_*")),
        "hyper": (folder / "disenlora").is_dir(),
    }


async def export_examples(store, run_ids: list[str], out: Path) -> tuple[int, int]:
    """``bdc export``'s default: one p2t and one t2s pair per solved problem. (examples, problems)."""
    from engine.search.export import examples_from_run, one_per_problem
    from engine.training.examples import save_examples

    examples: list[Any] = []
    for rid in run_ids:
        probs = {p["problem_id"]: p["problem"] for p in await store.run_problems(rid)}
        examples += examples_from_run(rid, await store.events(rid), probs, stages=("p2t", "t2s"))
    examples = one_per_problem(examples)
    if examples:
        out.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(save_examples, examples, str(out))
    return len(examples), len({e.problem_id for e in examples})


class PipelineScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("1", "export", "Export"),
        Binding("2", "cluster", "Cluster"),
        Binding("3", "train('experts')", "Experts"),
        Binding("4", "train('hyper')", "Hypernetwork"),
        Binding("5", "app.new_eval", "Evaluate"),
        Binding("j", "app.jobs", "Jobs"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="pipeline-steps", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "training pipeline"
        self.folder: Path | None = None
        self.finished_runs: list[str] = []
        self.refresh_steps()

    @work(exclusive=True, group="pipeline", exit_on_error=False)
    async def refresh_steps(self) -> None:
        try:
            runs = await self.app.store.runs()
        except Exception as e:
            self.app.report(e, "reading runs")
            return
        self.finished_runs = [r.id for r in runs if r.kind == "search" and r.status == "finished"]
        self.folder = latest_folder()
        self.show_steps()

    def show_steps(self) -> None:
        have = stage_of(self.folder)
        mark = {True: "✓", False: "·"}
        where = str(self.folder) if self.folder else f"(none yet: 1 creates one under {pipeline_root()})"
        lines = [
            f"pipeline folder: {where}",
            "",
            f" {mark[have['examples']]} 1  export training examples from {len(self.finished_runs)} finished searches"
            f" → {EXAMPLES}",
            f" {mark[have['clusters']]} 2  cluster the examples (k by silhouette) → clusters.json       [background job]",
            f" {mark[have['experts']]} 3  train one LoRA expert per cluster → experts/              [background job]",
            f" {mark[have['hyper']]} 4  train the DisenLoRA hypernetwork → disenlora/            [background job]",
            "   5  evaluate (the evaluation form; artifacts: the pipeline folder)",
            "",
            "Jobs show their progress and loss on the jobs screen (j). Each job asks before it starts.",
        ]
        self.query_one("#pipeline-steps", Static).update("\n".join(lines))

    @work(exclusive=True, group="pipeline-export", exit_on_error=False)
    async def action_export(self) -> None:
        if not self.finished_runs:
            self.notify("no finished search to export from", severity="warning")
            return
        folder = pipeline_root() / time.strftime("%Y%m%d-%H%M%S")
        try:
            n, solved = await export_examples(self.app.store, self.finished_runs, folder / EXAMPLES)
        except Exception as e:
            self.app.report(e, "exporting training examples")
            return
        if n == 0:
            self.notify("the finished searches solved no problem: nothing to export", severity="warning")
            return
        self.notify(f"wrote {n} examples from {solved} solved problems to {folder / EXAMPLES}", timeout=8)
        self.folder = folder
        self.show_steps()

    def _need(self, step: str, what: str) -> bool:
        if not stage_of(self.folder)[step]:
            self.notify(f"{what} first", severity="warning")
            return False
        return True

    def action_cluster(self) -> None:
        if not self._need("examples", "export training examples (1)"):
            return
        folder = self.folder
        config = {
            "data": str(folder / EXAMPLES),
            "k": None,
            "k_max": 8,
            "encoder": "auto",
            "base": None,
            "out": str(folder),
            "seed": 0,
        }
        self.start_job("cluster", config, f"Cluster the examples in {folder}?")

    def action_train(self, mode: str) -> None:
        if not self._need("clusters", "cluster the examples (2)"):
            return
        if mode == "hyper" and not self._need("experts", "train the experts (3)"):
            return
        folder = self.folder
        config = {
            "mode": mode,
            "data": str(folder / EXAMPLES),
            "out": str(folder),
            "base": None,
            "train": {},
            "clusters": str(folder),
        }
        what = "one LoRA expert per cluster" if mode == "experts" else "the DisenLoRA hypernetwork"
        self.start_job("train", config, f"Train {what} (loads the base model; may take long)?")

    def start_job(self, kind: str, config: dict[str, Any], question: str) -> None:
        if self.app.launcher is None:
            self.notify("cannot start jobs: engine.jobs (the process launcher) is not available", severity="error")
            return
        details = "\n".join(f"{k}: {v}" for k, v in config.items())

        def answered(yes: bool | None) -> None:
            if yes:
                self.create_and_launch(kind, config)

        self.app.push_screen(ConfirmScreen(question, details=details, yes_label="Start", danger=False), answered)

    @work(exclusive=False, group="pipeline-launch", exit_on_error=False)
    async def create_and_launch(self, kind: str, config: dict[str, Any]) -> None:
        try:
            job_id = await self.app.store.create_job(kind, config)
        except Exception as e:
            self.app.report(e, f"creating the {kind} job")
            return
        pid = self.app.launch_job(job_id)
        if pid is not None:
            self.notify(f"{kind} job {job_id} started (pid {pid}); j: jobs screen")
