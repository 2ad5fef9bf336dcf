"""The composed LoRA layer (paper eq. 15-18) around a peft LoRA layer holding K experts.

    A* = [A_1, ..., A_K] (.) G        (rank-wise gates, G in R^{K x r})
    dW = sum_k  s_k B_k diag(g_k) A_k (s_k: the expert's LoRA scaling alpha/r)
    y  = W_0 x + dW x

Computed without materialising dW: stack the experts once into A_cat (K*r x in) and
B_cat (out x K*r, scaling folded in), then y = W_0 x + B_cat ((A_cat x) * g). That is one
matmul pair of rank K*r per layer, and it takes a *different gate per batch row*, so a batch
mixing inputs is composed correctly (the stacked path).

Adapters may differ in rank (Twin-Merging's shared expert next to its exclusive ones,
engine/training/twin.py): the gate then has one entry per rank slot, sum of the ranks in
adapter order. DisenLoRA's hypernetwork gates K x r and so reads :attr:`ComposedLoraLayer.r`,
which exists only when the experts share one rank.

The gate is an attribute set by the owning model for one forward (``layer.gate``); there is
no module-level state, so two composed models, or two batches, never see each other's gates.

Fast path for a batch of one: the gate is fixed for the whole generation, so
:meth:`ComposedLoraLayer.fold` bakes it in, either into the base weight (zero overhead per
token; the base layer's weight points at a folded copy until :meth:`unfold`) or, for 4-bit bases whose
weights cannot absorb an update, into one rank-K*r low-rank pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _is_quantized(layer: nn.Module) -> bool:
    w = getattr(layer, "weight", None)
    return w is None or hasattr(w, "quant_state") or not w.dtype.is_floating_point


class ComposedLoraLayer(nn.Module):
    """Replaces one peft ``LoraLayer`` (which must hold the K expert adapters)."""

    def __init__(self, lora_layer: nn.Module, adapters: Sequence[str]):
        super().__init__()
        missing = [a for a in adapters if a not in lora_layer.lora_A]
        if missing:
            raise ValueError(f"LoRA layer has no adapter(s) {missing}")
        if any(lora_layer.use_dora.get(a, False) for a in adapters):
            raise ValueError("DoRA experts cannot be composed rank-wise")
        self.base_layer = lora_layer.base_layer
        # the same module objects peft created: the experts' weights are shared, not copied
        self.lora_A = nn.ModuleDict({a: lora_layer.lora_A[a] for a in adapters})
        self.lora_B = nn.ModuleDict({a: lora_layer.lora_B[a] for a in adapters})
        # peft keeps one dropout per adapter; the stacked path needs one input, so the
        # first expert's dropout (they are trained with the same settings) is applied.
        self.lora_dropout = lora_layer.lora_dropout[adapters[0]]
        self.adapters = list(adapters)
        self.scaling = [float(lora_layer.scaling[a]) for a in adapters]
        self.ranks = [int(lora_layer.r[a]) for a in adapters]
        self.k = len(adapters)
        self.gate: torch.Tensor | None = None  # (B, gate_size) or (gate_size,), set per forward
        self.disabled = False
        self._lowrank: tuple[torch.Tensor, torch.Tensor] | None = None  # (gated A, B^T) while folded
        self._weight_backup: torch.Tensor | None = None  # the original weight while folded
        self._folded: torch.Tensor | None = None  # reused buffer holding W0 + dW
        self._b_for_weight: torch.Tensor | None = None  # B_cat in the base weight's dtype
        self.register_buffer("A_cat", torch.empty(0), persistent=False)
        self.register_buffer("B_cat", torch.empty(0), persistent=False)
        self.refresh()

    @property
    def r(self) -> int:
        """The experts' common rank (ValueError when they differ: per-expert K x r gates need one)."""
        if len(set(self.ranks)) != 1:
            raise ValueError(f"experts must share one LoRA rank, got {sorted(set(self.ranks))}")
        return self.ranks[0]

    @property
    def gate_size(self) -> int:
        return sum(self.ranks)

    @torch.no_grad()
    def refresh(self) -> None:
        """Re-stack the experts (call after changing their weights; they are frozen)."""
        self.A_cat = torch.cat([self.lora_A[a].weight for a in self.adapters], 0).detach()
        self.B_cat = torch.cat([self.lora_B[a].weight * s for a, s in zip(self.adapters, self.scaling)], 1).detach()
        self._b_for_weight = None

    def delta_weight(self, gate: torch.Tensor) -> torch.Tensor:
        """dW = sum_k s_k B_k diag(g_k) A_k for one gate (sum of ranks,), as a dense matrix."""
        return self.B_cat @ (self.A_cat * gate.to(self.A_cat.dtype)[:, None])

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        y = self.base_layer(x, *args, **kwargs)
        if self.disabled or self._weight_backup is not None:
            return y
        if self._lowrank is not None:  # folded for generation: no dropout, factors in x's dtype
            a, bt = self._lowrank
            if a.dtype != x.dtype:
                a, bt = a.to(x.dtype), bt.to(x.dtype)
                self._lowrank = (a, bt)
            h = F.linear(x, a)
            if y.requires_grad or not y.is_contiguous():
                return y + h @ bt
            # two ops per token instead of three: the up-projection accumulates into y
            y.view(-1, y.shape[-1]).addmm_(h.reshape(-1, h.shape[-1]), bt)
            return y
        g = self.gate
        if g is None:
            raise RuntimeError("composed LoRA layer called without a gate; run it through DisenLoRAModel")
        h = self.lora_dropout(x).to(self.A_cat.dtype) @ self.A_cat.T  # (..., K*r)
        g = g.to(h.dtype)
        if g.dim() == 1:
            g = g.unsqueeze(0)
        if h.dim() > 2:  # (B, T, K*r): one gate per row, shared by its positions
            g = g.view(g.shape[0], *([1] * (h.dim() - 2)), g.shape[-1])
        return y + ((h * g) @ self.B_cat.T).to(y.dtype)

    @torch.no_grad()
    def fold(self, gate: torch.Tensor, *, into_weight: bool = True) -> str:
        """Bake one gate in for a whole generation. Returns ``weight`` or ``lowrank``.

        ``weight``: W0 + dW is written by one fused ``addmm`` into a buffer this layer
        keeps, and the base layer's weight is pointed at it; :meth:`unfold` points it back
        at the untouched original. So a fold costs one pass over the weight and no copy,
        and unfolding is free and exact. Measured (bench/composed_inference.py): the old
        fold (backup clone, in-place addmm, copy back, per-fold casts of B) spent most of
        its time faulting in fresh pages for the 56 backups and casting, 0.4-0.6 s per input
        on the bench model, i.e. 15-25 decoded tokens; this one costs about one token.
        The buffer (one weight-sized tensor per adapted layer) is kept for the next input.
        """
        self.unfold()
        gate = gate.reshape(-1).to(self.A_cat.dtype)
        if into_weight and not _is_quantized(self.base_layer):
            w = self.base_layer.weight
            if self._b_for_weight is None or self._b_for_weight.dtype != w.dtype:
                self._b_for_weight = self.B_cat.to(w.dtype)
            if self._folded is None or self._folded.shape != w.shape or self._folded.dtype != w.dtype:
                self._folded = torch.empty_like(w.data)
            # fp32 bases stay exact: the gate multiplies A in A's dtype before any cast
            torch.addmm(w.data, self._b_for_weight, (self.A_cat * gate[:, None]).to(w.dtype), out=self._folded)
            self._weight_backup = w.data
            w.data = self._folded
            return "weight"
        self._lowrank = (self.A_cat * gate[:, None], self.B_cat.T)
        return "lowrank"

    @torch.no_grad()
    def unfold(self) -> None:
        if self._weight_backup is not None:
            self.base_layer.weight.data = self._weight_backup
            self._weight_backup = None
        self._lowrank = None

    def extra_repr(self) -> str:
        return f"experts={self.k}, ranks={self.ranks}"
