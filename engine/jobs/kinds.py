"""The work behind each kind of job, as functions of a JSON config.

One definition serves ``bdc cluster|train|eval`` (which create a job and run it in the
foreground) and ``bdc jobs run JOB`` (which the TUI launches detached): the config dict is
what is stored in the jobs table, so any job can be re-run or resumed from the store.

Configs (all paths are strings):

cluster  {data, k | None (auto), k_max, encoder: auto|base|minilm, base, out, seed}
train    {mode: experts|sft|hyper|merge|twin, data, out, base, clusters, r, alpha, hidden, gate,
          methods, density, train: {TrainSettings fields},
          experts: [k] (only these), backend: ray, address, gpus_per_expert (one Ray task per expert),
          twin: shared, scaling, shared_rank, rank (exclusive), temperature (+ density, hidden)}
eval     {solvers: [spec], datasets: [{name, path, limit, difficulty, ids}], base, artifacts, quant,
          max_new_tokens, batch_size, allow_overlap, out_dir, generate_only, samples, retry_errors}
         (engine/evaluation/job.py)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class Reporter(Protocol):
    def __call__(self, event: dict[str, Any]) -> None: ...

    def should_stop(self) -> bool: ...


def training_examples(data: str, record_in: str | Path | None = None) -> list[Any]:
    """``bdc export`` JSONL, or ``canonical[:humaneval,mbpp]`` built from reference solutions.
    With ``record_in`` (the artifact folder) the examples' problems are recorded there, so
    `bdc eval` can refuse to score them."""
    from engine.training.examples import canonical_examples, load_examples
    from engine.training.provenance import record_trained_problems

    if data.startswith("canonical"):
        names = data.split(":", 1)[1].split(",") if ":" in data else ["humaneval", "mbpp"]
        examples = canonical_examples(names)
    else:
        examples = load_examples(data)
    if record_in is not None:
        record_trained_problems(record_in, examples, data)
    return examples


def run_cluster(config: dict[str, Any], rep: Reporter) -> dict[str, Any]:
    from engine.training.clustering import cluster_examples
    from engine.training.embedding import clustering_encoder

    examples = training_examples(config["data"], config["out"])
    encoder, note = clustering_encoder(config.get("encoder") or "auto", config.get("base"))
    rep({"event": "note", "message": note})
    out = cluster_examples(
        examples,
        encoder,
        k=config.get("k"),
        k_max=int(config.get("k_max", 8)),
        out_dir=config["out"],
        seed=int(config.get("seed", 0)),
        progress=rep,
    )
    return {**out, "encoder_note": note}


def _train_settings(config: dict[str, Any]) -> Any:
    from engine.training.config import TrainSettings

    return TrainSettings(**{k: v for k, v in (config.get("train") or {}).items() if v is not None})


def _lora(config: dict[str, Any]) -> Any:
    from engine.training.config import LoraSettings

    r = int(config.get("r", 8))
    return LoraSettings(r=r, alpha=int(config.get("alpha") or 2 * r))


def run_train(config: dict[str, Any], rep: Reporter) -> dict[str, Any]:
    from engine.errors import ConfigError
    from engine.training.base import resolve_base
    from engine.training.clustering import load_result

    mode, out = config.get("mode"), Path(config["out"])
    base = resolve_base(config.get("base"))
    if mode == "experts" and config.get("backend") == "ray":
        from engine.distributed.training import train_experts_on_ray

        return train_experts_on_ray(config, rep)
    if mode == "experts":
        from engine.training.experts import train_experts

        dirs = train_experts(
            base,
            training_examples(config["data"], out),
            load_result(config.get("clusters") or out),
            out / "experts",
            lora=_lora(config),
            train=_train_settings(config),
            progress=rep,
            should_stop=rep.should_stop,
            only=config.get("experts"),
        )
        return {"mode": mode, "adapters": [str(d) for d in dirs]}
    if mode == "sft":
        from engine.training.experts import train_adapter

        res = train_adapter(
            base,
            training_examples(config["data"], out),
            out / "sft",
            lora=_lora(config),
            train=_train_settings(config),
            progress=rep,
            should_stop=rep.should_stop,
            name="sft",
        )
        return {"mode": mode, "status": res.status, "step": res.step, "total": res.total, "final_loss": res.final_loss}
    if mode == "hyper":
        from engine.training.config import HyperSettings
        from engine.training.hypernet import train_hypernetwork

        clusters = load_result(config.get("clusters") or out)
        experts = [str(out / "experts" / f"expert_{k}") for k in range(clusters["k"])]
        settings = dict(config.get("train") or {})
        settings["lr"] = settings.get("lr") or 1e-3
        res = train_hypernetwork(
            base,
            experts,
            clusters,
            training_examples(config["data"], out),
            out / "disenlora",
            hyper=HyperSettings(hidden=int(config.get("hidden", 256)), gate=config.get("gate", "softmax")),
            train=_train_settings({"train": settings}),
            progress=rep,
            should_stop=rep.should_stop,
        )
        return {"mode": mode, "status": res.status, "step": res.step, "total": res.total, "final_loss": res.final_loss}
    if mode == "merge":
        from engine.training.merge import merge_adapters

        experts = sorted((out / "experts").glob("expert_*"), key=lambda p: int(p.name.split("_")[1]))
        if not experts:
            raise ConfigError(f"{out / 'experts'}: no experts to merge; train them first")
        methods = list(config.get("methods") or ["linear", "cat", "ties", "dare_linear", "dare_ties"])
        merged = {}
        for i, m in enumerate(methods):
            if rep.should_stop():
                break
            merged[m] = str(
                merge_adapters(base, experts, m, out / "merges" / m, density=float(config.get("density", 0.5)))
            )
            rep({"event": "merged", "method": m, "fraction": (i + 1) / len(methods)})
        return {"mode": mode, "merges": merged}
    if mode == "twin":
        return _run_twin(config, base, out, rep)
    raise ConfigError(f"unknown training mode {mode!r}: experts, sft, hyper, merge or twin")


def _run_twin(config: dict[str, Any], base: str, out: Path, rep: Reporter) -> dict[str, Any]:
    """Twin-Merging: shared + SVD-compressed exclusive experts, router trained on the
    clusters (engine/training/twin.py); ``train`` settings drive the router's loop."""
    from engine.training.clustering import load_result
    from engine.training.router import RouterSettings, router_train_settings
    from engine.training.twin import TwinSettings, train_twin

    clusters = load_result(config.get("clusters") or out)
    experts = [str(out / "experts" / f"expert_{k}") for k in range(clusters["k"])]
    twin = TwinSettings(
        shared=config.get("shared") or "linear",
        scaling=config.get("scaling"),
        density=float(config.get("density") or 0.5),
        shared_rank=config.get("shared_rank"),
        exclusive_rank=config.get("rank"),
    )
    router = RouterSettings(
        hidden=int(config.get("hidden") or 256), temperature=float(config.get("temperature") or 1.0)
    )
    res, metrics = train_twin(
        base,
        experts,
        clusters,
        training_examples(config["data"], out),
        out / "twin",
        twin=twin,
        router=router,
        train=router_train_settings(**(config.get("train") or {})),
        progress=rep,
        should_stop=rep.should_stop,
    )
    return {
        "mode": "twin",
        "status": res.status,
        "step": res.step,
        "total": res.total,
        "final_loss": res.final_loss,
        **metrics,
    }


def run_eval(config: dict[str, Any], rep: Reporter) -> dict[str, Any]:
    from engine.evaluation.job import run_eval as run

    return run(config, rep)


KINDS: dict[str, Callable[[dict[str, Any], Any], Any]] = {
    "cluster": run_cluster,
    "train": run_train,
    "eval": run_eval,
}
