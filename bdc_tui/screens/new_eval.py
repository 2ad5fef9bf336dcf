"""New evaluation form: solvers × dataset subsets -> an ``eval`` job run by ``engine.jobs``.

The form writes exactly the config ``engine.jobs.kinds.run_eval`` reads (see
``eval_config``) and launches ``bdc jobs run JOB`` detached; the jobs screen follows the
job through the store and shows ``result["rows"]`` in the paper's Table 2 layout.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, Label, Select, SelectionList, Static

from bdc_tui import services
from bdc_tui.screens.launch_form import LaunchForm
from bdc_tui.screens.new_search import _int
from engine.errors import BdcError

MERGE_METHODS = ("linear", "cat", "ties", "dare_linear", "dare_ties")
# (spec, label): the solver specs engine.evaluation.solvers.make_solvers understands
SOLVERS: tuple[tuple[str, str], ...] = (
    ("base", "base model (w/o tuning)"),
    ("sft", "SFT on all (artifacts/sft)"),
    ("experts", "SFT on each cluster (artifacts/experts/expert_k)"),
    *((f"merge:{m}", f"merge {m} (artifacts/merges/{m})") for m in MERGE_METHODS),
    ("disenlora", "DisenLoRA (artifacts/disenlora)"),
    ("twin", "Twin-Merging (artifacts/twin)"),
)
NEEDS_ARTIFACTS = {"sft", "experts", "disenlora", "twin"}
ANY = "any"


def eval_config(
    *,
    solvers: list[str],
    adapters: list[str],
    datasets: list[str],
    difficulty: str | None,
    limit: int | None,
    data_path: str | None,
    base: str | None,
    artifacts: str | None,
    quant: str,
    max_new_tokens: int | None,
    batch_size: int | None,
) -> dict[str, Any]:
    """The ``eval`` job config, validated where the form can tell what is wrong.

    A difficulty applies to the chosen datasets that have it (APPS has introductory/
    interview/competition, CodeContests easy/hard); a dataset without it is evaluated
    whole. ``data_path`` is the file or folder of the file-based datasets (MBPP, APPS,
    CodeContests); None uses their default location.
    """
    infos = services.dataset_infos()
    specs = list(solvers) + [f"adapter:{a}" for a in adapters]
    if not specs:
        raise BdcError("choose at least one solver or give an adapter folder")
    if not datasets:
        raise BdcError("choose at least one dataset")
    needing = [s for s in specs if s in NEEDS_ARTIFACTS or s.startswith("merge:")]
    if needing and not artifacts:
        raise BdcError(f"{', '.join(needing)} need the artifacts folder (the `bdc train --out` folder)")
    if limit is not None and limit <= 0:
        raise BdcError("limit must be positive (or empty for every problem)")
    if quant not in ("none", "4bit"):
        raise BdcError(f"quantisation must be none or 4bit, not {quant!r}")
    if difficulty and not any(difficulty in infos.get(d, {}).get("difficulties", ()) for d in datasets):
        raise BdcError(f"none of {', '.join(datasets)} has difficulty {difficulty!r}")
    out_ds = []
    for name in datasets:
        info = infos.get(name, {})
        out_ds.append({
            "name": name,
            "path": data_path if (data_path and info.get("file_based", True)) else None,
            "limit": limit,
            "difficulty": difficulty if difficulty and difficulty in info.get("difficulties", ()) else None,
        })
    mnt = 512 if max_new_tokens is None else max_new_tokens
    bs = 1 if batch_size is None else batch_size
    if mnt <= 0 or bs <= 0:
        raise BdcError("max new tokens and batch size must be positive")
    return {
        "solvers": specs,
        "datasets": out_ds,
        "base": base or None,
        "artifacts": artifacts or None,
        "quant": quant,
        "max_new_tokens": mnt,
        "batch_size": bs,
    }


class NewEvalScreen(LaunchForm):
    def compose(self) -> ComposeResult:
        infos = services.dataset_infos()
        names = list(infos)
        difficulties = sorted({d for i in infos.values() for d in i.get("difficulties", ()) if d != "all"})
        yield Header()
        with VerticalScroll(classes="form"):
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Datasets (space to toggle)")
                    yield SelectionList(*[(f"{n}  {infos[n].get('description', '')[:40]}", n, i == 0)
                                          for i, n in enumerate(names)], id="datasets")
                with Vertical():
                    yield Label("Solvers (space to toggle)")
                    yield SelectionList(*[(label, spec, spec == "base") for spec, label in SOLVERS], id="solvers")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Difficulty")
                    yield Select([(ANY, ANY)] + [(d, d) for d in difficulties], value=ANY, allow_blank=False, id="difficulty")
                with Vertical():
                    yield Label("Limit per dataset")
                    yield Input(value="20", id="limit")
                with Vertical():
                    yield Label("Data file/folder (MBPP, APPS, CodeContests)")
                    yield Input(placeholder="default location", id="data-path")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Artifacts folder (bdc train --out)")
                    yield Input(placeholder="needed by sft / experts / merge / disenlora / twin", id="artifacts")
                with Vertical():
                    yield Label("Extra adapters (comma-separated folders)")
                    yield Input(placeholder="adapters/my-lora", id="adapters")
                with Vertical():
                    yield Label("Base model (optional)")
                    yield Input(placeholder="default base model", id="base")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Quantisation")
                    yield Select([("none", "none"), ("4bit", "4bit")], value="none", allow_blank=False, id="quant")
                with Vertical():
                    yield Label("Max new tokens")
                    yield Input(value="512", id="max-new-tokens")
                with Vertical():
                    yield Label("Batch size")
                    yield Input(value="1", id="batch-size")
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Launch evaluation (ctrl+s)", variant="success", id="launch")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "new evaluation"

    def read_form(self) -> dict[str, Any]:
        difficulty = self.query_one("#difficulty", Select).value
        # in the order the lists show them, not the order they were ticked
        chosen = set(self.query_one("#solvers", SelectionList).selected)
        ticked_ds = set(self.query_one("#datasets", SelectionList).selected)
        return eval_config(
            solvers=[spec for spec, _ in SOLVERS if spec in chosen],
            adapters=[a.strip() for a in self._text("#adapters").split(",") if a.strip()],
            datasets=[d for d in services.dataset_infos() if d in ticked_ds],
            difficulty=None if difficulty in (ANY, Select.BLANK) else str(difficulty),
            limit=_int(self._text("#limit"), "limit"),
            data_path=self._text("#data-path") or None,
            base=self._text("#base") or None,
            artifacts=self._text("#artifacts") or None,
            quant=str(self.query_one("#quant", Select).value),
            max_new_tokens=_int(self._text("#max-new-tokens"), "max new tokens"),
            batch_size=_int(self._text("#batch-size"), "batch size"),
        )

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
        self.created_job = job_id
        pid = self.app.launch_job(job_id)
        self.app.pop_screen()
        if pid is not None:
            self.notify(f"evaluation {job_id} started (pid {pid})")
        self.app.action_jobs()
