"""New evaluation form: solvers × dataset subsets -> an ``eval`` job run by ``engine.jobs``.

The form writes exactly the config ``engine.jobs.kinds.run_eval`` reads (see
``eval_config``) and launches ``bdc jobs run JOB`` detached; the jobs screen follows the
job through the store and shows ``result["rows"]`` in the paper's Table 2 layout.
No solver is ticked when the form opens (each one loads a model and generates for every
problem), the paths are checked before anything starts, and a confirmation names the
solvers and datasets that will run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Input, Select, SelectionList

from bdc_tui import form_memory, services
from bdc_tui.screens.launch_form import FormErrors, LaunchForm, field_row
from bdc_tui.widgets.check_list import CheckList
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
REMEMBERED = ("limit", "data-path", "artifacts", "adapters", "base", "max-new-tokens", "batch-size")


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
    """The ``eval`` job config, validated where the form can tell what is wrong; a
    BdcError lists every problem, one per line.

    A difficulty applies to the chosen datasets that have it (APPS has introductory/
    interview/competition, CodeContests easy/hard); a dataset without it is evaluated
    whole. ``data_path`` is the file or folder of the file-based datasets (MBPP, APPS,
    CodeContests); None uses their default location.
    """
    infos = services.dataset_infos()
    errors = FormErrors()
    specs = list(solvers) + [f"adapter:{a}" for a in adapters]
    if not specs:
        errors.add("choose at least one solver or give an adapter folder")
    if not datasets:
        errors.add("choose at least one dataset")
    needing = [s for s in specs if s in NEEDS_ARTIFACTS or s.startswith("merge:")]
    if needing and not artifacts:
        errors.add(f"{', '.join(needing)} need the artifacts folder (the `bdc train --out` folder)")
    if limit is not None and limit <= 0:
        errors.add("limit must be positive (or empty for every problem)")
    if quant not in ("none", "4bit"):
        errors.add(f"quantisation must be none or 4bit, not {quant!r}")
    if difficulty and datasets and not any(difficulty in infos.get(d, {}).get("difficulties", ()) for d in datasets):
        errors.add(f"none of {', '.join(datasets)} has difficulty {difficulty!r}")
    mnt = 512 if max_new_tokens is None else max_new_tokens
    bs = 1 if batch_size is None else batch_size
    if mnt <= 0 or bs <= 0:
        errors.add("max new tokens and batch size must be positive")
    errors.raise_if_any()
    out_ds = []
    for name in datasets:
        info = infos.get(name, {})
        out_ds.append(
            {
                "name": name,
                "path": data_path if (data_path and info.get("file_based", True)) else None,
                "limit": limit,
                "difficulty": difficulty if difficulty and difficulty in info.get("difficulties", ()) else None,
            }
        )
    return {
        "solvers": specs,
        "datasets": out_ds,
        "base": base or None,
        "artifacts": artifacts or None,
        "quant": quant,
        "max_new_tokens": mnt,
        "batch_size": bs,
    }


def solver_folder(spec: str, artifacts: Path) -> Path | None:
    """Where ``engine.evaluation.solvers.make_solvers`` reads a trained solver from."""
    if spec == "experts":
        return artifacts / "experts"
    if spec.startswith("merge:"):
        return artifacts / "merges" / spec.split(":", 1)[1]
    if spec in NEEDS_ARTIFACTS:
        return artifacts / spec
    return None


def missing_paths(
    *, solvers: list[str], adapters: list[str], datasets: list[str], data_path: str | None, artifacts: str | None
) -> list[str]:
    """Every folder or file the evaluation would need but does not find (checked before
    the job starts, not minutes into loading a model)."""
    out: list[str] = []
    infos = services.dataset_infos()
    if data_path and not Path(data_path).expanduser().exists():
        out.append(f"data file/folder {data_path} does not exist")
    elif not data_path:
        try:
            from engine.problems import resolve_path
        except Exception:  # no dataset registry here: the job reports it
            resolve_path = None
        for name in datasets:
            if resolve_path is not None and infos.get(name, {}).get("file_based") and resolve_path(name) is None:
                out.append(f"{name} has no file in its default location: give the data file/folder")
    if artifacts:
        root = Path(artifacts).expanduser()
        if not root.is_dir():
            out.append(f"artifacts folder {artifacts} does not exist")
        else:
            for spec in solvers:
                folder = solver_folder(spec, root)
                if folder is not None and not folder.exists():
                    out.append(f"{spec} needs {folder}, which does not exist (train it first)")
    for a in adapters:
        if not Path(a).expanduser().is_dir():
            out.append(f"adapter folder {a} does not exist")
    return out


class NewEvalScreen(LaunchForm):
    LAUNCH_LABEL = "Launch evaluation (ctrl+s)"
    AUTO_FOCUS = "#datasets"

    def __init__(self) -> None:
        super().__init__()
        self.memory = form_memory.load("eval")

    def compose(self) -> ComposeResult:
        infos = services.dataset_infos()
        names = list(infos)
        difficulties = sorted({d for i in infos.values() for d in i.get("difficulties", ()) if d != "all"})
        ticked = set(self.memory.get("datasets") or names[:1])
        yield Header()
        with VerticalScroll(classes="form", id="form-fields"):
            yield field_row(
                (
                    "Datasets (space to tick)",
                    CheckList(
                        *[(f"{n}  {infos[n].get('description', '')}", n, n in ticked) for n in names],
                        id="datasets",
                        compact=True,
                    ),
                ),
                (
                    "Solvers (none ticked yet)",
                    CheckList(*[(label, spec, False) for spec, label in SOLVERS], id="solvers", compact=True),
                ),
            )
            yield field_row(
                (
                    "Difficulty",
                    self.remembered_choice(
                        "difficulty",
                        [(ANY, ANY)] + [(d, d) for d in difficulties],
                        ANY,
                        tooltip="applies to the ticked datasets that have it; the others run whole",
                    ),
                ),
                (
                    "Limit",
                    self.remembered_input(
                        "limit", "20", placeholder="all", tooltip="first N problems of each dataset; empty = all"
                    ),
                ),
                (
                    "Data file/folder",
                    self.remembered_input(
                        "data-path",
                        placeholder="default location",
                        tooltip="file or folder of MBPP / APPS / CodeContests (HumanEval ships with bdc)",
                    ),
                ),
            )
            yield field_row(
                (
                    "Artifacts folder",
                    self.remembered_input(
                        "artifacts",
                        placeholder="bdc train --out",
                        tooltip="needed by sft / experts / merge / disenlora / twin",
                    ),
                ),
                (
                    "Extra adapters",
                    self.remembered_input(
                        "adapters",
                        placeholder="dir1, dir2",
                        tooltip="comma-separated LoRA adapter folders, each evaluated as a solver",
                    ),
                ),
                ("Base model", self.remembered_input("base", placeholder="default")),
            )
            yield field_row(
                ("Quantisation", self.remembered_choice("quant", [("none", "none"), ("4bit", "4bit")], "none")),
                ("Max new tokens", self.remembered_input("max-new-tokens", "512")),
                ("Batch size", self.remembered_input("batch-size", "1")),
            )
        yield from self.compose_actions()
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.sub_title = "new evaluation"
        self._offer_difficulties()

    @on(SelectionList.SelectedChanged, "#datasets")
    def _offer_difficulties(self) -> None:
        """Offer only the difficulties the ticked datasets have (HumanEval and MBPP: none)."""
        infos = services.dataset_infos()
        ticked = self.query_one("#datasets", CheckList).selected
        levels = list(
            dict.fromkeys(d for name in ticked for d in infos.get(name, {}).get("difficulties", ()) if d != "all")
        )
        select = self.query_one("#difficulty", Select)
        keep = select.value if select.value in levels else ANY
        select.set_options([(ANY, ANY)] + [(d, d) for d in levels])
        select.value = keep
        self.difficulties = [ANY, *levels]

    def read_form(self) -> dict[str, Any]:
        """The eval job config (raises BdcError listing every problem with the form)."""
        errors = FormErrors()
        difficulty = self.query_one("#difficulty", Select).value
        # in the order the lists show them, not the order they were ticked
        chosen = set(self.query_one("#solvers", CheckList).selected)
        ticked_ds = set(self.query_one("#datasets", CheckList).selected)
        fields = dict(
            solvers=[spec for spec, _ in SOLVERS if spec in chosen],
            adapters=[a.strip() for a in self._text("#adapters").split(",") if a.strip()],
            datasets=[d for d in services.dataset_infos() if d in ticked_ds],
            data_path=self._text("#data-path") or None,
            artifacts=self._text("#artifacts") or None,
        )
        numbers = dict(
            limit=errors.int(self._text("#limit"), "Limit"),
            max_new_tokens=errors.int(self._text("#max-new-tokens"), "Max new tokens"),
            batch_size=errors.int(self._text("#batch-size"), "Batch size"),
        )
        config = None
        try:
            config = eval_config(
                **fields,
                **numbers,
                difficulty=None if difficulty in (ANY, Select.BLANK) else str(difficulty),
                base=self._text("#base") or None,
                quant=str(self.query_one("#quant", Select).value),
            )
        except BdcError as e:
            errors.problems += [line.removeprefix("• ") for line in str(e).splitlines()]
        for problem in missing_paths(**fields):
            errors.add(problem)
        errors.raise_if_any()
        assert config is not None
        return config

    def remember(self) -> None:
        values: dict[str, Any] = {k: self.query_one(f"#{k}", Input).value for k in REMEMBERED}
        values.update(
            datasets=list(self.query_one("#datasets", CheckList).selected),
            difficulty=self.query_one("#difficulty", Select).value,
            quant=self.query_one("#quant", Select).value,
        )
        form_memory.save("eval", values)

    def action_submit(self) -> None:
        try:
            config = self.read_form()
        except BdcError as e:
            self.show_error(str(e))
            return
        self.show_error("")
        self.remember()
        self.confirm_then("Start this evaluation?", summary(config), lambda: self.create_and_launch(config))

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


def summary(config: dict[str, Any]) -> list[str]:
    """What the confirmation shows: each solver loads a model and answers every problem."""

    def dataset_line(d: dict[str, Any]) -> str:
        parts = [f"first {d['limit']}" if d.get("limit") else "all problems"]
        if d.get("difficulty"):
            parts.append(d["difficulty"])
        if d.get("path"):
            parts.append(f"from {d['path']}")
        return f"{d['name']} ({', '.join(parts)})"

    return [
        f"solvers    {', '.join(config['solvers'])}",
        f"datasets   {'; '.join(dataset_line(d) for d in config['datasets'])}",
        f"base model {config['base'] or 'default'}, quantisation {config['quant']}, "
        f"{config['max_new_tokens']} new tokens, batch {config['batch_size']}",
        f"artifacts  {config['artifacts'] or '–'}",
        "",
        f"Each of the {len(config['solvers'])} solver(s) loads a model and generates a program for every problem.",
        "It runs in its own process; x on the jobs screen stops it.",
    ]
