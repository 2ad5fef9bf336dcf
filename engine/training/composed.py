"""The composed model shared by DisenLoRA and Twin-Merging (peft's ``tuners/lora`` split).

peft keeps a tuner in three parts: the config (here engine/training/config.py), the layer
(engine/training/layer.py: :class:`ComposedLoraLayer`) and the model that owns the layers.
This module is the model part both methods share: a peft model whose LoRA layers are
swapped for composed ones, the per-forward gating, the folded fast path for one input,
generation and persistence. A subclass only says where the gates come from
(:meth:`ComposedModel.gates`) and which small module produces them
(:attr:`ComposedModel.gating`: the hypernetwork or the router) with what shape
(:meth:`ComposedModel.gating_config`); everything else is one implementation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from engine.errors import ConfigError
from engine.training.layer import ComposedLoraLayer

# below this many new tokens ``auto`` folds a low-rank pair instead of the weights.
# Measured (bench/composed_inference.py --threads 1, medians of 9 interleaved rounds, 2 loaded
# cores): the weight fold costs about one decoded token, the low-rank pair 15-25 % per token
# (SmolLM2-135M at 8 tokens: weights 0.94x, low-rank 0.80x of a merged LoRA; at 16: 1.00x vs
# 0.76x; random Llama h1024x8 at 16: 0.93x vs 0.84x), so weights win from a few tokens on.
FOLD_WEIGHTS_MIN_TOKENS = 8
FOLD_MODES = ("auto", "weights", "lowrank", "none")


def compose_lora_layers(peft_model: nn.Module, adapters: Sequence[str]) -> dict[str, ComposedLoraLayer]:
    """Swap every peft LoraLayer in ``peft_model`` for a ComposedLoraLayer (in place)."""
    from peft.tuners.lora import LoraLayer

    targets = [(n, m) for n, m in peft_model.named_modules() if isinstance(m, LoraLayer)]
    if not targets:
        raise ConfigError("the model has no LoRA layers to compose")
    out: dict[str, ComposedLoraLayer] = {}
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = peft_model.get_submodule(parent_name) if parent_name else peft_model
        composed = ComposedLoraLayer(module, adapters)
        setattr(parent, child, composed)
        out[name] = composed
    return out


class ComposedModel(nn.Module):
    """Base LM + frozen LoRA adapters composed per input by gates from a small module.

    Subclasses set :attr:`config_file` and :attr:`weights_file` (the artefact's names),
    implement :meth:`gates`, :attr:`gating` and :meth:`gating_config`, and call
    ``super().__init__(peft_model, adapters)`` first.
    """

    config_file: ClassVar[str]
    weights_file: ClassVar[str]

    def __init__(self, peft_model: nn.Module, adapters: Sequence[str]):
        super().__init__()
        for p in peft_model.parameters():
            p.requires_grad_(False)
        self.peft_model = peft_model
        layers = compose_lora_layers(peft_model, adapters)
        self.layer_names = list(layers)
        # a plain list: the layers are already registered inside peft_model
        self._layers: list[ComposedLoraLayer] = list(layers.values())
        self.adapters = list(adapters)

    # ---- what a subclass provides ----------------------------------------------------
    def gates(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Gates (B, L, ...) for a batch of encodings (B, d); row i, layer l flattens to
        that layer's gate (one entry per rank slot of its adapters)."""
        raise NotImplementedError

    @property
    def gating(self) -> nn.Module:
        """The trained module that produces the gates (the only weights an artefact holds)."""
        raise NotImplementedError

    def gating_config(self) -> dict[str, Any]:
        """What, besides the weights, rebuilds :attr:`gating` (written into the config)."""
        raise NotImplementedError

    # ---- shared behaviour ------------------------------------------------------------
    @property
    def layers(self) -> list[ComposedLoraLayer]:
        return self._layers

    @property
    def hf_model(self) -> nn.Module:
        """The underlying transformers model (its LoRA layers are the composed ones)."""
        return self.peft_model.get_base_model()

    @contextlib.contextmanager
    def gated(self, gates: torch.Tensor) -> Iterator[None]:
        """Give every layer its (B, gate_size) slice of ``gates`` (B, L, ...) for the block."""
        b = gates.shape[0]
        for i, layer in enumerate(self._layers):
            layer.gate = gates[:, i].reshape(b, -1)
        try:
            yield
        finally:
            for layer in self._layers:
                layer.gate = None

    @contextlib.contextmanager
    def folded(self, gate: torch.Tensor, *, into_weights: bool = True) -> Iterator[str]:
        """Fast path for one input: bake its gate (L, ...) into every layer."""
        modes = set()
        try:
            for i, layer in enumerate(self._layers):
                modes.add(layer.fold(gate[i], into_weight=into_weights))
            yield "weight" if modes == {"weight"} else "lowrank"
        finally:
            for layer in self._layers:
                layer.unfold()

    @contextlib.contextmanager
    def adapters_disabled(self) -> Iterator[None]:
        for layer in self._layers:
            layer.disabled = True
        try:
            yield
        finally:
            for layer in self._layers:
                layer.disabled = False

    def forward(self, input_ids: torch.Tensor, embeddings: torch.Tensor, **kwargs: Any) -> Any:
        with self.gated(self.gates(embeddings)):
            return self.peft_model(input_ids=input_ids, **kwargs)

    @torch.no_grad()
    def generate(
        self, input_ids: torch.Tensor, embeddings: torch.Tensor, *, fold: str = "auto", **gen_kwargs: Any
    ) -> torch.Tensor:
        """Generate with each row's own composition.

        ``fold`` for a batch of one: ``weights`` bakes dW into the base weights (zero cost
        per token, one fused pass over every adapted weight per input), ``lowrank`` uses
        one low-rank pair per layer (no fixed cost, a small cost per token), ``auto``
        picks ``weights`` for generations of at least FOLD_WEIGHTS_MIN_TOKENS new tokens
        and ``lowrank`` for shorter ones (4-bit bases always get ``lowrank``); ``none``
        always uses the stacked path. Batches of several inputs always use the stacked path.
        """
        if fold not in FOLD_MODES:
            raise ConfigError(f"fold must be one of {', '.join(FOLD_MODES)}, got {fold!r}")
        g = self.gates(embeddings)
        if input_ids.shape[0] == 1 and fold != "none":
            if fold == "auto":
                n_new = gen_kwargs.get("max_new_tokens") or 0
                fold = "weights" if n_new >= FOLD_WEIGHTS_MIN_TOKENS else "lowrank"
            with self.folded(g[0], into_weights=(fold == "weights")):
                return self.hf_model.generate(input_ids=input_ids, **gen_kwargs)
        with self.gated(g):
            return self.hf_model.generate(input_ids=input_ids, **gen_kwargs)

    # ---- persistence -----------------------------------------------------------------
    def save(self, out_dir: str | Path, meta: Mapping[str, Any]) -> Path:
        """Write the artefact: the gating module's weights and the JSON config, which is
        ``meta`` (base model, experts, encoder, anything a caller adds) plus
        :meth:`gating_config`."""
        from engine.training.artifacts import save_gating

        return save_gating(
            self.gating,
            out_dir,
            {**meta, **self.gating_config()},
            config_file=self.config_file,
            weights_file=self.weights_file,
        )
