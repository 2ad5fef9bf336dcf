"""LoRA experts (paper eq. 13): one adapter per cluster, plus "SFT on all" as the baseline.

Each adapter is trained by :func:`train_adapter` into its own folder, which ends up a
standard PEFT adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``) that
any peft user can load with ``PeftModel.from_pretrained`` on the base model its config names
(a hub id, never bdc's cache path: engine.training.base.model_id); ``training.json`` (settings, loss curve) and the resumable
``checkpoint/`` sit next to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.errors import ConfigError
from engine.training.config import LoraSettings, TrainSettings
from engine.training.examples import TrainingExample
from engine.training.loop import LoopResult, Progress, ShouldStop, held_out_loss, run_loop, split_held_out, tagged

META = "training.json"


def train_adapter(
    base: str,
    examples: Sequence[TrainingExample],
    out_dir: str | Path,
    *,
    lora: LoraSettings | None = None,
    train: TrainSettings | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    name: str = "adapter",
) -> LoopResult:
    """SFT a LoRA adapter on ``examples`` (loss on outputs only); resumable, cancellable.

    With ``train.quant == "4bit"`` the base is loaded in nf4 (QLoRA); the adapter saved is
    the same standard LoRA folder either way.
    """
    import torch
    from peft import get_peft_model

    from engine.training.base import load_base_model, load_tokenizer, model_id, name_base_model
    from engine.training.data import collate, encode_pair
    from engine.training.loss import causal_lm_loss

    lora = lora or LoraSettings()
    train = train or TrainSettings()
    if not examples:
        raise ConfigError(f"{name}: no training examples")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(train.seed)
    tok = load_tokenizer(base)
    model = load_base_model(base, quant=train.quant, for_training=True)
    if train.quant == "none":
        for p in model.parameters():
            p.requires_grad_(False)
    pm = get_peft_model(model, lora.to_peft())
    params = {n: p for n, p in pm.named_parameters() if p.requires_grad}
    encoded = [encode_pair(tok, ex.input, ex.output, train.max_length) for ex in examples]
    train_items, eval_items = split_held_out(len(encoded), train.eval_fraction, train.seed)

    def batch_of(items: list[int]) -> dict[str, Any]:
        return collate([encoded[i] for i in items], tok.pad_token_id)

    def make_batch(idx: list[int]) -> dict[str, Any]:
        return batch_of([train_items[i] for i in idx])

    def loss_fn(batch: dict[str, Any]):
        return causal_lm_loss(pm, batch["input_ids"], batch["labels"], batch.get("attention_mask"))

    result = run_loop(
        module=pm,
        params=params,
        n_items=len(train_items),
        make_batch=make_batch,
        loss_fn=loss_fn,
        settings=train,
        ckpt_dir=out / "checkpoint",
        progress=tagged(progress, adapter=name),
        should_stop=should_stop,
        evaluate=held_out_loss(loss_fn, batch_of, eval_items, train.batch_size) if eval_items else None,
    )
    from engine.training.ddp import DataParallel

    if not DataParallel().main:  # a data-parallel run: the main process writes the adapter
        return result
    if result.status == "done":
        name_base_model(pm, base)
        pm.save_pretrained(str(out))
    (out / META).write_text(
        json.dumps(
            {
                "name": name,
                "base": model_id(base),
                "n_examples": len(examples),
                "status": result.status,
                "step": result.step,
                "total": result.total,
                "losses": result.losses,
                "lora": lora.to_dict(),
                "train": train.to_dict(),
            }
        )
    )
    return result


def split_by_cluster(examples: Sequence[TrainingExample], labels: Sequence[int], k: int) -> list[list[TrainingExample]]:
    if len(labels) != len(examples):
        raise ConfigError(
            f"clustering has {len(labels)} assignments but the data has {len(examples)} examples; "
            "cluster this same file first"
        )
    groups: list[list[TrainingExample]] = [[] for _ in range(k)]
    for ex, lab in zip(examples, labels):
        groups[int(lab)].append(ex)
    return groups


def expert_dir(out_dir: str | Path, k: int) -> Path:
    return Path(out_dir) / f"expert_{k}"


def train_experts(
    base: str,
    examples: Sequence[TrainingExample],
    clusters: dict[str, Any],
    out_dir: str | Path,
    *,
    lora: LoraSettings | None = None,
    train: TrainSettings | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    only: Sequence[int] | None = None,
) -> list[Path]:
    """One adapter per cluster of ``clusters`` (the dict `bdc cluster` saves), trained in
    sequence into ``out_dir/expert_<k>``. Finished experts are skipped on resume.
    ``only``: just these experts (``--expert K``: one process or GPU per expert)."""
    groups = split_by_cluster(examples, clusters["labels"], clusters["k"])
    chosen = range(len(groups)) if only is None else list(dict.fromkeys(int(k) for k in only))
    bad = [k for k in chosen if not 0 <= k < len(groups)]
    if bad:
        raise ConfigError(f"--expert {bad[0]}: the clustering has {len(groups)} experts (0..{len(groups) - 1})")
    dirs: list[Path] = []
    for k in chosen:
        group = groups[k]
        d = expert_dir(out_dir, k)
        dirs.append(d)
        if (d / "adapter_config.json").is_file():
            continue
        if not group:
            raise ConfigError(f"cluster {k} is empty; re-cluster with a smaller K")
        r = train_adapter(
            base,
            group,
            d,
            lora=lora,
            train=train,
            progress=tagged(progress, expert=k, experts=len(groups)),
            should_stop=should_stop,
            name=f"expert_{k}",
        )
        if r.status != "done":
            break
    return dirs
