"""The rest of the pipeline from the TUI: export → cluster → train solvers → evaluate, with settings.

Each step works in one pipeline folder (``<data dir>/pipeline/<stamp>``): the export writes
``examples.jsonl`` there; clustering writes ``clusters.json``; the solvers go to
``experts/``, ``sft/``, ``merges/<method>/``, ``twin/`` and ``disenlora/`` (the layout
``bdc cluster|train --out`` uses, so the CLI can carry on from any step, and ``bdc eval
--artifacts`` reads it). Export reads the store and takes a moment, so it runs here; the
rest are background jobs of the existing kinds (engine/jobs/kinds.py) with progress on the
jobs screen.

The form holds every step's settings, as the CLI takes them (``bdc export --per-node
--min-pass-rate``, ``bdc cluster --k/--auto --k-max --encoder``, ``bdc train … --epochs
--max-steps``, ``bdc eval --dataset --limit --allow-overlap``). "Step" picks what ctrl+s
starts (the next step not done yet, when the screen opens); the step's fields are checked
all at once, then a confirmation names the jobs and their settings. No solver is ticked
when it opens, and which solvers were ticked is never remembered; the other fields are.
Jobs do not wait for each other (the engine has no job chaining): a step that needs an
earlier one's output says so instead of starting.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input, Label, Select, Static

from bdc_tui import form_memory, services
from bdc_tui.screens.launch_form import FormErrors, LaunchForm, field_row
from bdc_tui.screens.new_eval import MERGE_METHODS, eval_config, missing_paths, solver_folder
from bdc_tui.widgets.check_list import CheckList
from engine.errors import BdcError
from engine.paths import data_dir

EXAMPLES = "examples.jsonl"
STEPS = ("export", "cluster", "train", "evaluate")
STEP_LABELS = {
    "export": "1 export training examples",
    "cluster": "2 cluster the examples",
    "train": "3 train the ticked solvers",
    "evaluate": "4 evaluate the ticked solvers",
}
# (spec, label): what the train step builds and the evaluate step scores; "base" is evaluate-only
SOLVERS: tuple[tuple[str, str], ...] = (
    ("experts", "LoRA expert per cluster → experts/"),
    ("disenlora", "DisenLoRA hypernetwork → disenlora/ (needs experts)"),
    ("sft", "SFT on all → sft/"),
    ("merge", "merges: " + ", ".join(MERGE_METHODS) + " → merges/ (needs experts)"),
    ("twin", "Twin-Merging → twin/ (needs experts)"),
    ("base", "base model w/o tuning (evaluate only)"),
)
NEEDS_EXPERTS = ("disenlora", "merge", "twin")
ENCODERS = (
    ("auto", "auto (base, else MiniLM)"),
    ("base", "base model (the paper's)"),
    ("minilm", "MiniLM (fast)"),
)
Plan = tuple[str, list[str], list[tuple[str, dict[str, Any]]]]  # (question, details, [(job kind, config)])
REMEMBERED = ("min-pass-rate", "k", "k-max", "base", "epochs", "max-steps", "limit")


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


def next_step(folder: Path | None) -> str:
    have = stage_of(folder)
    if not have["examples"]:
        return "export"
    if not have["clusters"]:
        return "cluster"
    if not (have["experts"] and have["hyper"]):
        return "train"
    return "evaluate"


def built(spec: str, folder: Path) -> bool:
    """The solver's output is in the folder (merges: every method's)."""
    if spec == "base":
        return True
    if spec == "merge":
        return all((folder / "merges" / m).exists() for m in MERGE_METHODS)
    if spec == "experts":
        return any((folder / "experts").glob("expert_*"))
    target = solver_folder(spec, folder)
    return target is not None and target.exists()


async def export_examples(
    store, run_ids: list[str], out: Path, *, per_node: bool = False, min_pass_rate: float = 0.0
) -> tuple[int, int]:
    """What ``bdc export`` writes: by default one p2t and one t2s pair per solved problem;
    ``per_node`` every simulated node's pairs at or above ``min_pass_rate``. (examples, problems)."""
    from engine.search.export import examples_from_run, one_per_problem, per_node_examples
    from engine.training.examples import save_examples

    examples: list[Any] = []
    for rid in run_ids:
        probs = {p["problem_id"]: p["problem"] for p in await store.run_problems(rid)}
        events = await store.events(rid)
        if per_node:
            examples += per_node_examples(rid, events, probs, min_pass_rate=min_pass_rate, stages=("p2t", "t2s"))
        else:
            examples += examples_from_run(rid, events, probs, stages=("p2t", "t2s"))
    if not per_node:
        examples = one_per_problem(examples)
    if examples:
        out.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(save_examples, examples, str(out))
    return len(examples), len({e.problem_id for e in examples})


def cluster_config(folder: Path, *, k: int | None, k_max: int, encoder: str, base: str | None) -> dict[str, Any]:
    """``bdc cluster DATA --k K | --auto --k-max M --encoder E --base B --out FOLDER``."""
    return {
        "data": str(folder / EXAMPLES),
        "k": k,
        "k_max": k_max,
        "encoder": encoder,
        "base": base,
        "out": str(folder),
        "seed": 0,
    }


def train_jobs(
    folder: Path, solvers: list[str], *, base: str | None, epochs: int | None, max_steps: int | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``train`` job configs for the ticked solvers (as ``bdc train <mode>`` writes them),
    and a note for each one that must wait for the experts."""
    data, out = str(folder / EXAMPLES), str(folder)
    train = {"epochs": epochs, "max_steps": max_steps, "quant": "none"}
    have_experts = stage_of(folder)["experts"]
    jobs: list[dict[str, Any]] = []
    waiting: list[str] = []
    for spec in solvers:
        if spec in NEEDS_EXPERTS and not have_experts:
            waiting.append(f"{spec} waits for the experts: run this step again once they are trained")
            continue
        if spec == "experts":
            jobs.append({"mode": "experts", "data": data, "out": out, "base": base, "train": train, "clusters": out})
        elif spec == "sft":
            jobs.append({"mode": "sft", "data": data, "out": out, "base": base, "train": train})
        elif spec == "disenlora":
            jobs.append(
                {
                    "mode": "hyper",
                    "data": data,
                    "out": out,
                    "base": base,
                    "train": train,
                    "clusters": out,
                    "hidden": 256,
                    "gate": "softmax",
                }
            )
        elif spec == "merge":
            jobs.append({"mode": "merge", "out": out, "base": base, "methods": list(MERGE_METHODS), "density": 0.5})
        elif spec == "twin":
            # the training fields drive the router (its own defaults when they are empty)
            jobs.append(
                {"mode": "twin", "data": data, "out": out, "base": base, "train": train, "clusters": out, "hidden": 256}
            )
    return jobs, waiting


def eval_specs(solvers: list[str]) -> list[str]:
    """The evaluate step's solver specs (``bdc eval --solver``): merges are one per method."""
    out: list[str] = []
    for spec in solvers:
        out += [f"merge:{m}" for m in MERGE_METHODS] if spec == "merge" else [spec]
    return out


class PipelineScreen(LaunchForm):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "submit", "Start step", priority=True),
        Binding("j", "app.jobs", "Jobs"),
        *(Binding(str(i + 1), f"step('{s}')", STEP_LABELS[s], show=False) for i, s in enumerate(STEPS)),
    ]
    LAUNCH_LABEL = "Start step (ctrl+s)"
    AUTO_FOCUS = "#step"

    def __init__(self) -> None:
        super().__init__()
        self.memory = form_memory.load("pipeline")
        self.folder: Path | None = latest_folder()
        self.finished_runs: list[str] = []
        self.export_settings: tuple[bool, float] = (False, 0.0)  # (per node, min pass rate) once checked

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        return True  # export runs here; the job steps say so when no launcher is available

    def compose(self) -> ComposeResult:
        names = services.dataset_names()
        yield Header()
        with VerticalScroll(classes="form", id="form-fields"):
            yield Static("", id="pipeline-steps", markup=False)
            yield field_row(
                (
                    "Step (ctrl+s starts it)",
                    self.remembered_choice(
                        "step", [(STEP_LABELS[s], s) for s in STEPS], next_step(self.folder), remembered=False
                    ),
                ),
                (
                    "Export",
                    self.remembered_choice(
                        "export",
                        [("one pair per solved problem", "problem"), ("every simulated node", "node")],
                        "problem",
                        tooltip="per problem: the paper's data (bdc export); every node: bdc export --per-node",
                    ),
                ),
                (
                    "Min pass rate",
                    self.remembered_input(
                        "min-pass-rate",
                        "0",
                        tooltip="every-node export only: drop pairs below this public pass rate (0–1)",
                    ),
                ),
            )
            yield field_row(
                (
                    "Clusters K",
                    self.remembered_input(
                        "k", placeholder="auto", tooltip="clusters (≥ 2); empty: chosen by silhouette up to K max"
                    ),
                ),
                ("K max", self.remembered_input("k-max", "8", tooltip="largest K the auto choice tries")),
                (
                    "Encoder",
                    self.remembered_choice(
                        "encoder",
                        [(label, name) for name, label in ENCODERS],
                        "auto",
                        tooltip="what embeds the examples before k-means: auto takes the base model when one is installed",
                    ),
                ),
            )
            yield field_row(
                (
                    "Base model",
                    self.remembered_input(
                        "base", placeholder="installed default", tooltip="the base code model every solver builds on"
                    ),
                ),
                (
                    "Epochs",
                    self.remembered_input(
                        "epochs",
                        placeholder="1 (router: 30)",
                        tooltip="passes over the examples; empty: 1 for LoRA training, 30 for the Twin router",
                    ),
                ),
                (
                    "Max steps",
                    self.remembered_input(
                        "max-steps", placeholder="epochs decide", tooltip="stop each training after this many steps"
                    ),
                ),
            )
            yield Label("Solvers to train / evaluate (none ticked yet)")
            yield CheckList(*[(label, spec, False) for spec, label in SOLVERS], id="solvers", compact=True)
            yield field_row(
                ("Eval dataset", self.remembered_choice("dataset", [(n, n) for n in names], names[0])),
                (
                    "Eval limit",
                    self.remembered_input("limit", "20", placeholder="all", tooltip="first N problems; empty = all"),
                ),
                (
                    "Trained-on problems",
                    self.remembered_choice(
                        "allow-overlap",
                        [("refused (not scored)", "refuse"), ("scored (--allow-overlap)", "score")],
                        "refuse",
                        remembered=False,
                        tooltip="problems the solvers were trained on: refused, or scored and marked in the table",
                    ),
                ),
            )
        yield from self.compose_actions()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "training pipeline"
        self.show_steps()
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
        where = str(self.folder) if self.folder else f"none yet: export creates one under {pipeline_root()}"
        lines = [
            f"folder {where}",
            f" {mark[have['examples']]} 1 export from {len(self.finished_runs)} finished search(es) → {EXAMPLES}"
            f"   {mark[have['clusters']]} 2 cluster → clusters.json",
            f" {mark[have['experts']]} 3 experts/   {mark[have['hyper']]} disenlora/   "
            "4 evaluate · jobs run in the background (j: progress)",
        ]
        self.query_one("#pipeline-steps", Static).update("\n".join(lines))

    # ------------------------------------------------------------------ reading the form
    def _solvers(self) -> list[str]:
        chosen = set(self.query_one("#solvers", CheckList).selected)
        return [spec for spec, _ in SOLVERS if spec in chosen]

    def _need(self, errors: FormErrors, step: str, what: str) -> Path | None:
        """The folder, when it holds the ``step`` output (else a problem naming what to run first)."""
        if self.folder is None or not stage_of(self.folder)[step]:
            errors.add(f"{what} first")
            return None
        return self.folder

    def plan(self, step: str) -> Plan:
        """(question, lines, [(job kind, config)]) for ``step``; a BdcError lists every problem.

        Export has no job: it runs here when confirmed."""
        planners = {
            "export": self._plan_export,
            "cluster": self._plan_cluster,
            "train": self._plan_train,
            "evaluate": self._plan_evaluate,
        }
        return planners[step](FormErrors(), self._text("#base") or None)

    def _plan_export(self, errors: FormErrors, base: str | None) -> Plan:
        """``bdc export`` (per problem, or ``--per-node --min-pass-rate``) into a new folder."""
        per_node = self.query_one("#export", Select).value == "node"
        rate = errors.float(self._text("#min-pass-rate") or "0", "Min pass rate", minimum=0)
        if rate is not None and rate > 1:
            errors.add(f"Min pass rate is a share of tests between 0 and 1, not {rate:g}")
        if rate and not per_node:
            errors.add("Min pass rate applies to the every-node export only (per problem keeps solved ones)")
        if not self.finished_runs:
            errors.add("no finished search to export from")
        errors.raise_if_any()
        self.export_settings = (per_node, rate or 0.0)
        what = (
            f"every simulated node's pairs with pass rate ≥ {rate or 0:g}"
            if per_node
            else "one pair per solved problem"
        )
        return (
            "Export training examples?",
            [
                f"from  {', '.join(self.finished_runs)}",
                f"what  {what}",
                f"into  a new folder under {pipeline_root()}",
            ],
            [],
        )

    def _plan_cluster(self, errors: FormErrors, base: str | None) -> Plan:
        """``bdc cluster`` of the folder's examples."""
        folder = self._need(errors, "examples", "export training examples (step 1)")
        k = errors.int(self._text("#k"), "Clusters K", minimum=2)
        k_max = errors.int(self._text("#k-max") or "8", "K max", minimum=2)
        encoder = str(self.query_one("#encoder", Select).value)
        errors.raise_if_any()
        assert folder is not None and k_max is not None
        config = cluster_config(folder, k=k, k_max=k_max, encoder=encoder, base=base)
        return (
            "Cluster the examples?",
            [
                f"data     {config['data']}",
                f"K        {k if k else f'auto (silhouette, 2..{k_max})'}",
                f"encoder  {dict(ENCODERS)[encoder]}" + (f" ({base})" if base and encoder != "minilm" else ""),
                "It runs in the background: j shows its progress.",
            ],
            [("cluster", config)],
        )

    def _plan_train(self, errors: FormErrors, base: str | None) -> Plan:
        """``bdc train <mode>`` for each ticked solver whose inputs are there."""
        solvers = [s for s in self._solvers() if s != "base"]
        if not solvers:
            errors.add("tick at least one solver to train (base needs no training)")
        folder = self._need(errors, "clusters", "cluster the examples (step 2)")
        epochs = errors.int(self._text("#epochs"), "Epochs", minimum=1)
        max_steps = errors.int(self._text("#max-steps"), "Max steps", minimum=1)
        errors.raise_if_any()
        assert folder is not None
        configs, waiting = train_jobs(folder, solvers, base=base, epochs=epochs, max_steps=max_steps)
        if not configs:
            errors.problems += waiting
            errors.raise_if_any()
        lines = [f"{c['mode']:<8} → {folder / _out_name(c['mode'])}" for c in configs]
        lines += [
            f"base model {base or 'installed default'}; epochs {epochs or 'default'}; max steps {max_steps or 'none'}",
            *waiting,
            f"{len(configs)} job(s) start at once, each loading the base model; x on the jobs screen stops one.",
        ]
        return ("Train these solvers?", lines, [("train", c) for c in configs])

    def _plan_evaluate(self, errors: FormErrors, base: str | None) -> Plan:
        """``bdc eval`` of the ticked solvers on one dataset, artifacts from the folder."""
        solvers = self._solvers()
        if not solvers:
            errors.add("tick at least one solver to evaluate")
        folder = self.folder
        if folder is None and any(s != "base" for s in solvers):
            errors.add("no pipeline folder yet: export and train first")
        specs = eval_specs(solvers)
        dataset = str(self.query_one("#dataset", Select).value)
        limit = errors.int(self._text("#limit"), "Eval limit", minimum=1)
        artifacts = str(folder) if folder is not None else None
        config: dict[str, Any] | None = None
        try:
            config = eval_config(
                solvers=specs,
                adapters=[],
                datasets=[dataset],
                difficulty=None,
                limit=limit,
                data_path=None,
                base=base,
                artifacts=artifacts,
                quant="none",
                max_new_tokens=None,
                batch_size=None,
            )
        except BdcError as e:
            errors.problems += [line.removeprefix("• ") for line in str(e).splitlines()]
        if folder is not None:
            errors.problems += missing_paths(
                solvers=specs, adapters=[], datasets=[dataset], data_path=None, artifacts=artifacts
            )
        errors.raise_if_any()
        assert config is not None
        config["allow_overlap"] = self.query_one("#allow-overlap", Select).value == "score"
        return (
            "Start this evaluation?",
            [
                f"solvers    {', '.join(specs)}",
                f"dataset    {dataset} ({f'first {limit}' if limit else 'all problems'})",
                f"artifacts  {artifacts or '–'}; base model {base or 'default'}",
                "trained-on problems: "
                + ("scored (marked in the table)" if config["allow_overlap"] else "refused (not scored)"),
                f"Each of the {len(specs)} solver(s) loads a model and generates a program for every problem.",
            ],
            [("eval", config)],
        )

    def remember(self) -> None:
        values: dict[str, Any] = {k: self.query_one(f"#{k}", Input).value for k in REMEMBERED}
        values.update(
            export=self.query_one("#export", Select).value,
            encoder=self.query_one("#encoder", Select).value,
            dataset=self.query_one("#dataset", Select).value,
        )
        form_memory.save("pipeline", values)

    # ------------------------------------------------------------------ starting
    def action_step(self, step: str) -> None:
        self.query_one("#step", Select).value = step
        self.action_submit()

    def action_submit(self) -> None:
        step = str(self.query_one("#step", Select).value)
        try:
            question, lines, jobs = self.plan(step)
        except BdcError as e:
            self.show_error(f"{step}:\n{e}")
            return
        if jobs and self.app.launcher is None:
            self.show_error("cannot start jobs here: engine.jobs (the process launcher) is not available")
            return
        self.show_error("")
        self.remember()
        go = self.run_export if step == "export" else lambda: self.create_and_launch(jobs)
        self.confirm_then(question, lines, go)

    @work(exclusive=True, group="pipeline-export", exit_on_error=False)
    async def run_export(self) -> None:
        per_node, rate = self.export_settings
        folder = pipeline_root() / time.strftime("%Y%m%d-%H%M%S")
        try:
            n, solved = await export_examples(
                self.app.store, self.finished_runs, folder / EXAMPLES, per_node=per_node, min_pass_rate=rate
            )
        except Exception as e:
            self.app.report(e, "exporting training examples")
            return
        if n == 0:
            self.show_error("nothing to export: the finished searches gave no pair at these settings")
            return
        self.notify(f"wrote {n} examples from {solved} problems to {folder / EXAMPLES}", timeout=8)
        self.folder = folder
        self.show_steps()
        self.query_one("#step", Select).value = next_step(folder)

    @work(exclusive=False, group="pipeline-launch", exit_on_error=False)
    async def create_and_launch(self, jobs: list[tuple[str, dict[str, Any]]]) -> None:
        started = []
        for kind, config in jobs:
            try:
                job_id = await self.app.store.create_job(kind, config)
            except Exception as e:
                self.app.report(e, f"creating the {kind} job")
                return
            pid = self.app.launch_job(job_id)
            if pid is not None:
                started.append(job_id)
        if started:
            self.notify(f"started {', '.join(started)}; j: jobs screen", timeout=8)


def _out_name(mode: str) -> str:
    return {"hyper": "disenlora", "merge": "merges"}.get(mode, mode)
