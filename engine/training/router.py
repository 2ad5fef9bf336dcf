"""Twin-Merging's router: an MLP that tells which expert (cluster) an input belongs to.

Lu et al. (2024) train a small MLP with cross-entropy to predict the task id of an input
from its features and use ``softmax(router(x))`` as the weights of the exclusive experts.
Here tasks are the clusters of `bdc cluster`, so the labels are the cluster assignments in
``clusters.json`` and the features are the encodings of the encoder the clustering used
(MiniLM or the base model; the paper used the merged model's hidden states, which would
need one extra forward of the LM per input only to route it).

Training goes through :func:`engine.training.loop.run_loop`, so it reports progress, stops
when asked and resumes from its checkpoint like every other training job. A stratified
validation split is held out and the router's accuracy on it is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError
from engine.training.config import RouterSettings, TrainSettings
from engine.training.loop import LoopResult, Progress, ShouldStop, run_loop

__all__ = ["Router", "RouterSettings", "router_train_settings", "train_router"]


class Router(nn.Module):
    def __init__(self, enc_dim: int, k: int, settings: RouterSettings):
        super().__init__()
        self.k, self.enc_dim, self.settings = k, enc_dim, settings
        h = settings.hidden
        self.net = nn.Sequential(
            nn.Linear(enc_dim, h),
            nn.GELU(),
            nn.Dropout(settings.dropout),
            nn.Linear(h, h),
            nn.GELU(),
            nn.Dropout(settings.dropout),
            nn.Linear(h, k),
        )

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """Logits (B, K) for encodings (B, d)."""
        return self.net(F.normalize(emb.float(), dim=-1))

    def weights(self, emb: torch.Tensor) -> torch.Tensor:
        """Routing weights (B, K), rows summing to one."""
        return torch.softmax(self(emb) / self.settings.temperature, dim=-1)


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices holding out ``fraction`` of every cluster; a cluster
    too small to spare one example stays whole in training."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lab = np.asarray(labels)
    train: list[int] = []
    val: list[int] = []
    for c in np.unique(lab):
        idx = rng.permutation(np.flatnonzero(lab == c)).tolist()
        n_val = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        val += idx[:n_val]
        train += idx[n_val:]
    return sorted(train), sorted(val)


@torch.no_grad()
def accuracy(router: Router, emb: torch.Tensor, labels: torch.Tensor) -> float | None:
    if len(labels) == 0:
        return None
    router.eval()
    return float((router(emb).argmax(-1) == labels).float().mean())


def router_train_settings(**overrides: Any) -> TrainSettings:
    """The router's loop defaults (the paper trains 50 epochs at lr 5e-4 with big batches;
    a small MLP on a few hundred encodings converges in fewer), then ``overrides``."""
    kw: dict[str, Any] = {"lr": 1e-3, "epochs": 30, "batch_size": 32}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return TrainSettings(**kw)


def train_router(
    emb: torch.Tensor,
    labels: Sequence[int],
    k: int,
    ckpt_dir: str | Path,
    *,
    settings: RouterSettings | None = None,
    train: TrainSettings | None = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> tuple[Router, LoopResult, dict[str, Any]]:
    """Fit a router to (encodings, cluster ids); returns it, the loop result and its
    metrics (train/validation accuracy and split sizes). Resumes from ``ckpt_dir``."""
    settings = settings or RouterSettings()
    train = train or router_train_settings()
    if len(labels) != len(emb):
        raise ConfigError(f"{len(labels)} cluster labels for {len(emb)} encoded examples")
    y = torch.as_tensor(list(labels), dtype=torch.long)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
        raise ConfigError(f"cluster labels must lie in 0..{k - 1}")
    tr, va = stratified_split(y.tolist(), settings.val_fraction, train.seed)
    if not tr:
        raise ConfigError("no examples to train the router on")
    torch.manual_seed(train.seed)
    router = Router(emb.shape[1], k, settings)
    x_tr, y_tr = emb[tr], y[tr]

    def make_batch(idx: list[int]) -> dict[str, Any]:
        # the loop counts "tokens" from the mask: one per example, so its rate is examples/s
        return {"x": x_tr[idx], "y": y_tr[idx], "attention_mask": torch.ones(len(idx), 1)}

    def loss_fn(batch: dict[str, Any]) -> torch.Tensor:
        return F.cross_entropy(router(batch["x"]), batch["y"])

    x_va, y_va = emb[va], y[va]

    def held_out() -> dict[str, float]:
        acc = accuracy(router, x_va, y_va)
        return {} if acc is None else {"val_accuracy": acc}

    # a few-thousand-parameter MLP: intra-op threads only contend (8x slower measured on a
    # busy 2-core machine), so the loop runs on one and the caller's setting is restored
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_loop(
            module=router,
            params=dict(router.named_parameters()),
            n_items=len(tr),
            make_batch=make_batch,
            loss_fn=loss_fn,
            settings=train,
            ckpt_dir=ckpt_dir,
            progress=progress,
            should_stop=should_stop,
            evaluate=held_out if va else None,
        )
    finally:
        torch.set_num_threads(threads)
    metrics = {
        "train_accuracy": accuracy(router, x_tr, y_tr),
        "val_accuracy": accuracy(router, emb[va], y[va]),
        "n_train": len(tr),
        "n_val": len(va),
        # what always naming the largest cluster scores: the bar the router must clear
        "majority": float(torch.bincount(y, minlength=k).max()) / max(1, len(y)),
    }
    router.eval()
    return router, result, metrics
