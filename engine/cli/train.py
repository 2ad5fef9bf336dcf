"""`bdc cluster`, `bdc train experts|sft|hyper|merge`, `bdc eval`: DisenLoRA headless.

One artefacts folder (``--out``) collects a whole DisenLoRA build, which `bdc eval
--artifacts` reads back::

    OUT/clusters.json  OUT/experts/expert_<k>/  OUT/sft/  OUT/merges/<method>/  OUT/disenlora/

Training DATA is the JSONL `bdc export` writes, or ``canonical[:humaneval,mbpp]`` for pairs
built from the datasets' canonical solutions. Interrupted training resumes when the same
command is run again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


def _examples(data: str) -> list[Any]:
    from engine.training.examples import canonical_examples, load_examples

    if data.startswith("canonical"):
        names = data.split(":", 1)[1].split(",") if ":" in data else ["humaneval", "mbpp"]
        return canonical_examples(names)
    return load_examples(data)


class _Reporter:
    """Rich progress bar fed by the training loop's progress events."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
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

    def __enter__(self) -> "_Reporter":
        self.progress.__enter__()
        return self

    def __exit__(self, *a: Any) -> None:
        self.progress.__exit__(*a)


def _train_settings(**kw: Any):
    from engine.training.config import TrainSettings

    return TrainSettings(**{k: v for k, v in kw.items() if v is not None})


_train_options = [
    click.option("--base", default=None, help="Base model folder or name (default: installed qwen2.5-coder-0.5b)."),
    click.option("--quant", type=click.Choice(["none", "4bit"]), default="none", help="4bit = QLoRA (nf4)."),
    click.option("--epochs", type=int, default=None),
    click.option("--max-steps", type=int, default=None),
    click.option("--batch-size", type=int, default=None),
    click.option("--grad-accum", type=int, default=None),
    click.option("--lr", type=float, default=None),
    click.option("--max-length", type=int, default=None),
    click.option("--seed", type=int, default=None),
]


def train_options(f):
    for opt in reversed(_train_options):
        f = opt(f)
    return f


def _lora(r: int, alpha: int | None):
    from engine.training.config import LoraSettings

    return LoraSettings(r=r, alpha=alpha or 2 * r)


@click.command()
@click.argument("data")
@click.option("--k", "k", type=int, default=None, help="Number of clusters.")
@click.option("--auto", is_flag=True, help="Choose K by cosine silhouette (2..--k-max).")
@click.option("--k-max", type=int, default=8)
@click.option("--encoder", type=click.Choice(["minilm", "base"]), default="minilm")
@click.option("--base", default=None, help="Base model for --encoder base.")
@click.option("--out", type=click.Path(file_okay=False), required=True)
def cluster(data: str, k: int | None, auto: bool, k_max: int, encoder: str, base: str | None, out: str) -> None:
    """Embed and cluster training DATA (eq. 12); writes OUT/clusters.json."""
    from rich.console import Console

    from engine.errors import ConfigError
    from engine.training.base import resolve_base
    from engine.training.clustering import cluster_examples
    from engine.training.embedding import get_encoder

    if (k is None) == (not auto):
        raise ConfigError("give exactly one of --k K or --auto")
    exs = _examples(data)
    enc = get_encoder(encoder, resolve_base(base) if encoder == "base" else None)
    d = cluster_examples(exs, enc, k=k, k_max=k_max, out_dir=out)
    c = Console()
    c.print(f"K = {d['k']}  sizes = {d['sizes']}  silhouette = {d['silhouette']}")
    for j, texts in d["samples"].items():
        c.print(f"[bold]cluster {j}[/]: " + (texts[0][:120].replace("\n", " ") if texts else ""))
    c.print(f"saved {Path(out) / 'clusters.json'}")


@click.group()
def train() -> None:
    """Train LoRA experts, SFT on all, the hypernetwork, or merge baselines."""


@train.command("experts")
@click.argument("data")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--clusters", type=click.Path(), default=None, help="clusters.json (default OUT/clusters.json).")
@click.option("--r", type=int, default=8)
@click.option("--alpha", type=int, default=None)
@train_options
def train_experts_cmd(data, out, clusters, r, alpha, base, quant, **kw) -> None:
    """One LoRA expert per cluster (eq. 13) into OUT/experts/expert_<k>."""
    from engine.training.base import resolve_base
    from engine.training.clustering import load_result
    from engine.training.experts import train_experts

    cl = load_result(clusters or out)
    with _Reporter() as rep:
        dirs = train_experts(resolve_base(base), _examples(data), cl, Path(out) / "experts",
                             lora=_lora(r, alpha), train=_train_settings(quant=quant, **kw), progress=rep)
    click.echo("experts: " + ", ".join(str(d) for d in dirs))


@train.command("sft")
@click.argument("data")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--r", type=int, default=8)
@click.option("--alpha", type=int, default=None)
@train_options
def train_sft_cmd(data, out, r, alpha, base, quant, **kw) -> None:
    """The "SFT on all" baseline adapter into OUT/sft."""
    from engine.training.base import resolve_base
    from engine.training.experts import train_adapter

    with _Reporter() as rep:
        res = train_adapter(resolve_base(base), _examples(data), Path(out) / "sft", lora=_lora(r, alpha),
                            train=_train_settings(quant=quant, **kw), progress=rep, name="sft")
    click.echo(f"sft: {res.status} at step {res.step}/{res.total}")


@train.command("hyper")
@click.argument("data")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--clusters", type=click.Path(), default=None)
@click.option("--hidden", type=int, default=256)
@click.option("--gate", type=click.Choice(["softmax", "sigmoid"]), default="softmax")
@train_options
def train_hyper_cmd(data, out, clusters, hidden, gate, base, quant, **kw) -> None:
    """The input-aware hypernetwork over OUT/experts (eq. 14-18) into OUT/disenlora."""
    from engine.training.base import resolve_base
    from engine.training.clustering import load_result
    from engine.training.config import HyperSettings
    from engine.training.hypernet import train_hypernetwork

    cl = load_result(clusters or out)
    experts = [str(Path(out) / "experts" / f"expert_{k}") for k in range(cl["k"])]
    kw["lr"] = kw.get("lr") or 1e-3
    with _Reporter() as rep:
        res = train_hypernetwork(resolve_base(base), experts, cl, _examples(data), Path(out) / "disenlora",
                                 hyper=HyperSettings(hidden=hidden, gate=gate),
                                 train=_train_settings(quant=quant, **kw), progress=rep)
    click.echo(f"hypernetwork: {res.status} at step {res.step}/{res.total}")


@train.command("merge")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Artefacts folder.")
@click.option("--method", "methods", multiple=True, default=["linear", "cat", "ties", "dare_linear", "dare_ties"])
@click.option("--density", type=float, default=0.5)
@click.option("--base", default=None)
def train_merge_cmd(out, methods, density, base) -> None:
    """Static merge baselines of OUT/experts into OUT/merges/<method>."""
    from engine.training.base import resolve_base
    from engine.training.merge import merge_adapters

    experts = sorted((Path(out) / "experts").glob("expert_*"), key=lambda p: int(p.name.split("_")[1]))
    for m in methods:
        d = merge_adapters(resolve_base(base), experts, m, Path(out) / "merges" / m, density=density)
        click.echo(f"{m}: {d}")


@click.command("eval")
@click.option("--solver", "solvers", multiple=True, default=["base"],
              help="base | sft | experts | merge:<method> | disenlora | adapter:<path> (repeatable).")
@click.option("--dataset", "datasets", multiple=True, default=["humaneval"], help="Repeatable.")
@click.option("--limit", type=int, default=None, help="First N problems of each dataset.")
@click.option("--base", default=None)
@click.option("--artifacts", type=click.Path(file_okay=False), default=None, help="The `bdc train --out` folder.")
@click.option("--quant", type=click.Choice(["none", "4bit"]), default="none")
@click.option("--max-new-tokens", type=int, default=512)
@click.option("--batch-size", type=int, default=1)
@click.option("--out", "out_json", type=click.Path(dir_okay=False), default=None, help="Write results JSON here.")
def eval_(solvers, datasets, limit, base, artifacts, quant, max_new_tokens, batch_size, out_json) -> None:
    """Evaluate solvers through the sandbox: PR and AC per difficulty (paper Table 2)."""
    import asyncio

    from rich.console import Console

    from engine.evaluation.runner import evaluate
    from engine.evaluation.solvers import make_solvers
    from engine.evaluation.tables import summarize, table2
    from engine.problems import load_dataset
    from engine.training.base import resolve_base

    base_path = resolve_base(base)
    problems = []
    for ds in datasets:
        ps = load_dataset(ds)
        problems += ps[:limit] if limit else ps
    summaries: dict[str, Any] = {}
    records: dict[str, Any] = {}
    for spec in solvers:
        for solver in make_solvers(spec, base=base_path, artifacts=artifacts, quant=quant,
                                   max_new_tokens=max_new_tokens):
            with _Reporter() as rep:
                res = asyncio.run(evaluate(solver, problems, batch_size=batch_size, progress=rep))
            summaries[solver.name] = summarize(res)
            records[solver.name] = [r.to_dict() for r in res]
    Console().print(table2(summaries, title=f"PR / AC  (base: {Path(base_path).name})"))
    if out_json:
        Path(out_json).write_text(json.dumps({"summaries": summaries, "results": records, "base": base_path}))
        click.echo(f"saved {out_json}")
