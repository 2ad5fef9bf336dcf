"""Static merge baselines (paper Table 2: Ties, Dare, ...) through peft's add_weighted_adapter.

Methods are peft's combination types: ``linear`` and ``ties``/``dare_linear``/``dare_ties``
combine the A and B factors (same rank required), ``cat`` concatenates them (rank K*r;
exactly dW = sum_k w_k dW_k), and the ``*_svd`` variants apply TIES/DARE to the full dW_k
then truncate by SVD - the faithful form of TIES/DARE on weight deltas.

Twin-Merging is not a static merge (a shared expert plus SVD-compressed exclusive experts
weighted per input by a router), so it lives in engine/training/twin.py (`bdc train twin`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from engine.errors import ConfigError

METHODS = (
    "linear",
    "cat",
    "ties",
    "dare_linear",
    "dare_ties",
    "ties_svd",
    "dare_linear_svd",
    "dare_ties_svd",
    "magnitude_prune",
)
_SPARSE = {"ties", "dare_linear", "dare_ties", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune"}


def default_weights(method: str, k: int) -> list[float]:
    """Averaging for linear/cat; weight 1 per expert for the sign/drop-and-rescale methods,
    which already rescale (TIES averages the agreeing entries, DARE rescales by 1/density)."""
    return [1.0 / k] * k if method in ("linear", "cat") else [1.0] * k


def merge_adapters(
    base: str,
    expert_dirs: Sequence[str | Path],
    method: str,
    out_dir: str | Path,
    *,
    weights: Sequence[float] | None = None,
    density: float = 0.5,
) -> Path:
    """Merge the experts into one standard PEFT adapter folder at ``out_dir``."""
    import torch
    from peft import PeftModel

    from engine.training.artifacts import relative_dirs
    from engine.training.base import load_base_model, model_id, name_base_model

    if method not in METHODS:
        raise ConfigError(f"unknown merge method {method!r}; choose from {', '.join(METHODS)}")
    k = len(expert_dirs)
    if k < 2:
        raise ConfigError("merging needs at least two expert adapters")
    weights = list(weights) if weights is not None else default_weights(method, k)
    if len(weights) != k:
        raise ConfigError(f"{len(weights)} weights for {k} experts")
    model = load_base_model(base, dtype=torch.float32)
    names = [f"expert_{i}" for i in range(k)]
    pm = PeftModel.from_pretrained(model, str(expert_dirs[0]), adapter_name=names[0])
    for n, d in zip(names[1:], expert_dirs[1:]):
        pm.load_adapter(str(d), adapter_name=n)
    kwargs = {"density": density} if method in _SPARSE else {}
    torch.manual_seed(0)  # DARE drops at random: make merges reproducible
    # the merged adapter is called "default" so save_pretrained writes it at the folder root
    pm.add_weighted_adapter(names, weights, "default", combination_type=method, **kwargs)
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    name_base_model(pm, base, ["default"])
    pm.save_pretrained(str(out), selected_adapters=["default"])
    (out / "merge.json").write_text(
        json.dumps(
            {
                "method": method,
                "weights": weights,
                "density": density if method in _SPARSE else None,
                "experts": relative_dirs(expert_dirs, out),
                "base": model_id(base),
            }
        )
    )
    return out
