"""The resumable training loop shared by LoRA experts, SFT-on-all and the hypernetwork.

Why our own loop instead of transformers' Trainer: a job must report progress through a
plain callback (the job runner writes it to the store), stop cleanly when asked, and
resume *at the same step with the same data order and RNG* after an interruption. The
loop is deterministic given (seed, step): the data order of epoch e is a permutation seeded
by seed + e, so a resumed job replays exactly the batches an uninterrupted job would see.

Progress events (dicts): ``{"event": "progress", "step", "total", "epoch", "loss", "lr",
"tokens_per_s", "eta_s"}``, ``{"event": "eval", "step", "total", <metric>: value...}`` (when
an ``evaluate`` callback is given: after every epoch and at the end),
``{"event": "checkpoint", "step"}``, ``{"event": "resumed", "step"}``,
``{"event": "done"|"cancelled", "step", "total"}``. The same loss, lr and eval metrics
also go to the trackers named by ``settings.report_to`` (engine/training/tracking.py).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.training.config import TrainSettings

Progress = Callable[[dict], None]


def tagged(progress: Progress | None, **tags: Any) -> Progress | None:
    """``progress`` with ``tags`` added to every event (which adapter, which expert of how many)."""
    if progress is None:
        return None
    return lambda ev: progress({**tags, **ev})


ShouldStop = Callable[[], bool]
CHECKPOINT = "checkpoint.pt"


@dataclass
class LoopResult:
    status: str  # done | cancelled
    step: int
    total: int
    losses: list[float] = field(default_factory=list)  # one per optimiser step, whole history

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None


def plan_total_steps(n_items: int, s: TrainSettings) -> tuple[int, int]:
    """(total optimiser steps, steps per epoch)."""
    per_step = s.batch_size * s.grad_accum
    spe = max(1, math.ceil(n_items / per_step))
    total = spe * s.epochs
    if s.max_steps is not None:
        total = min(total, s.max_steps) if s.max_steps > 0 else total
    return total, spe


def step_indices(step: int, n_items: int, s: TrainSettings, spe: int) -> list[list[int]]:
    """Micro-batches (lists of item indices) of optimiser step ``step``; deterministic."""
    import numpy as np

    epoch = step // spe
    perm = np.random.default_rng(s.seed + epoch).permutation(n_items)
    per_step = s.batch_size * s.grad_accum
    chunk = perm[(step % spe) * per_step : (step % spe + 1) * per_step].tolist()
    return [chunk[i : i + s.batch_size] for i in range(0, len(chunk), s.batch_size) if chunk[i : i + s.batch_size]]


def split_held_out(n_items: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training, held-out) item indices: a seeded ``fraction`` is held out for evaluation.
    With ``fraction`` 0, or too few items to spare one, everything trains, in order."""
    import numpy as np

    n_eval = int(round(n_items * fraction))
    if n_eval < 1 or n_eval >= n_items:
        return list(range(n_items)), []
    perm = np.random.default_rng(seed + 7919).permutation(n_items).tolist()
    return sorted(perm[n_eval:]), sorted(perm[:n_eval])


def held_out_loss(
    loss_fn: Callable[[dict[str, Any]], Any],
    make_batch: Callable[[list[int]], dict[str, Any]],
    items: list[int],
    batch_size: int,
) -> Callable[[], dict[str, float]]:
    """An ``evaluate`` callback for :func:`run_loop`: the mean loss over ``items`` (no grad)."""

    def evaluate() -> dict[str, float]:
        import torch

        total, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(items), batch_size):
                chunk = items[i : i + batch_size]
                total += float(loss_fn(make_batch(chunk))) * len(chunk)
                n += len(chunk)
        return {"loss": total / max(n, 1)}

    return evaluate


def _lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def run_loop(
    *,
    module: Any,
    params: dict[str, Any],
    n_items: int,
    make_batch: Callable[[list[int]], dict[str, Any]],
    loss_fn: Callable[[dict[str, Any]], Any],
    settings: TrainSettings,
    ckpt_dir: str | Path,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    evaluate: Callable[[], dict[str, float]] | None = None,
) -> LoopResult:
    """Optimise ``params`` (name -> trainable Parameter) on ``n_items`` examples.

    ``make_batch`` turns item indices into a batch dict (it must carry ``attention_mask``
    for the token count), ``loss_fn`` returns the mean loss of a batch.
    A checkpoint in ``ckpt_dir`` is resumed automatically; a finished job returns at once.
    ``evaluate`` (optional) returns held-out metrics; it runs after every epoch and at the end.
    """
    import torch

    from engine.training.ddp import DataParallel
    from engine.training.tracking import RunLog

    dp = DataParallel()  # one process unless started by `accelerate launch` / torchrun
    s = settings
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = ckpt_dir / CHECKPOINT
    emit = progress or (lambda _e: None)
    stop = should_stop or (lambda: False)
    total, spe = plan_total_steps(n_items, s)
    trainable = [p for p in params.values()]
    opt = torch.optim.AdamW(trainable, lr=s.lr, weight_decay=s.weight_decay)
    warmup = int(round(total * s.warmup_ratio))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, warmup))
    step = 0
    losses: list[float] = []

    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if state["total"] != total:
            from engine.errors import ConfigError

            raise ConfigError(
                f"{ckpt_path}: checkpoint is for {state['total']} steps, this job plans {total}; "
                "use the same data and settings or another output folder"
            )
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(state["params"][name].to(p.dtype))
        opt.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"])
        step, losses = state["step"], list(state["losses"])
        emit({"event": "resumed", "step": step, "total": total})

    def save() -> None:
        if not dp.main:  # every process holds the same parameters: one writes them
            return
        _atomic_save(
            {
                "step": step,
                "total": total,
                "params": {n: p.detach().cpu().clone() for n, p in params.items()},
                "optim": opt.state_dict(),
                "sched": sched.state_dict(),
                "rng": torch.get_rng_state(),
                "losses": losses,
                "settings": s.to_dict(),
            },
            ckpt_path,
        )
        emit({"event": "checkpoint", "step": step, "total": total})

    already_done = step >= total  # a finished job run again: nothing to train, log or evaluate
    run_log = (
        RunLog(s.report_to, s.logging_dir or ckpt_dir.parent / "logs", ckpt_dir.parent.name, s.to_dict())
        if s.report_to and not already_done and dp.main
        else None
    )

    def run_eval() -> None:
        if evaluate is None:
            return
        metrics = evaluate()
        module.train()
        emit({"event": "eval", "step": step, "total": total, **metrics})
        if run_log is not None:
            run_log.log({f"eval/{k}": v for k, v in metrics.items()}, step)

    module.train()
    t0 = time.perf_counter()
    start_step = step
    tokens = 0
    status = "done"
    try:
        while step < total:
            if dp.sum(1.0 if stop() else 0.0) > 0:  # all processes stop at the same step
                status = "cancelled"
                break
            micro = step_indices(step, n_items, s, spe)
            n_micro_items = sum(len(m) for m in micro)
            opt.zero_grad(set_to_none=True)
            step_loss = 0.0
            step_tokens = 0
            for idx in dp.shard(micro):
                batch = make_batch(idx)
                loss = loss_fn(batch)
                (loss * (len(idx) / n_micro_items)).backward()
                step_loss += float(loss.detach()) * len(idx) / n_micro_items
                step_tokens += int(batch["attention_mask"].sum())
            dp.sum_grads(trainable)
            step_loss, tokens = dp.sum(step_loss), tokens + int(dp.sum(step_tokens))
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            lr = sched.get_last_lr()[0]
            sched.step()
            step += 1
            losses.append(step_loss)
            elapsed = time.perf_counter() - t0
            per_step = elapsed / (step - start_step)
            event = {
                "event": "progress",
                "step": step,
                "total": total,
                "epoch": (step - 1) // spe,
                "loss": step_loss,
                "lr": lr,
                "tokens_per_s": tokens / max(elapsed, 1e-9),
                "eta_s": per_step * (total - step),
            }
            emit(event)
            if run_log is not None:
                run_log.log({f"train/{k}": event[k] for k in ("loss", "lr", "tokens_per_s", "epoch")}, step)
            if step % spe == 0 and step < total:
                run_eval()
            if s.checkpoint_every and step % s.checkpoint_every == 0 and step < total:
                save()
        if step == total and not already_done:
            run_eval()
    finally:
        if run_log is not None:
            run_log.close()
    module.eval()
    if status == "cancelled" or step == total:
        save()
    emit({"event": status, "step": step, "total": total})
    return LoopResult(status=status, step=step, total=total, losses=losses)
