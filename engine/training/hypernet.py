"""The input-aware hypernetwork f (paper eq. 14) and the DisenLoRA model (eq. 15-18).

    G_i = f(e_i, <cos(e_i, mu_1), ..., cos(e_i, mu_K)>),   G_i in R^{L x K x r}

``L`` is the number of adapted linear layers: every adapted projection of every decoder
layer gets its own rank-wise gates. :class:`DisenLoRAModel` is a
:class:`~engine.training.composed.ComposedModel` (the model part shared with Twin-Merging)
over the K expert adapters whose gates come from f: each forward computes G from the
batch's encodings and hands every layer its slice for that forward only (the paper's
release passed the input through a global instead).

Artefact (engine/training/artifacts.py): ``disenlora.json`` + ``hypernet.safetensors``.

Training (:func:`train_hypernetwork`): base and experts frozen, only f trains, with
cross-entropy on shuffled input/output pairs of the training data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ConfigError
from engine.training.artifacts import load_gating_state, read_config, relative_dirs, resolve_dirs
from engine.training.composed import FOLD_WEIGHTS_MIN_TOKENS, ComposedModel, compose_lora_layers
from engine.training.config import HyperSettings, TrainSettings
from engine.training.loop import LoopResult, Progress, ShouldStop, held_out_loss, run_loop, split_held_out, tagged

CONFIG_FILE = "disenlora.json"
WEIGHTS_FILE = "hypernet.safetensors"
FORMAT = "bdc-disenlora"
__all__ = ["DisenLoRAModel", "FOLD_WEIGHTS_MIN_TOKENS", "HyperNetwork", "compose_lora_layers", "load_disenlora"]


class HyperNetwork(nn.Module):
    """MLP over [e, cos(e, mu)] -> (B, L, K, r) gates. The head starts at zero, so the
    untrained model is the uniform composition of the experts (softmax) or half of each
    (sigmoid); training moves it towards input-specific gates."""

    def __init__(self, enc_dim: int, k: int, n_layers: int, r: int, settings: HyperSettings):
        super().__init__()
        self.k, self.n_layers, self.r = k, n_layers, r
        self.settings = settings
        h = settings.hidden
        self.trunk = nn.Sequential(
            nn.Linear(enc_dim + k, h),
            nn.GELU(),
            nn.Dropout(settings.dropout),
            nn.Linear(h, h),
            nn.GELU(),
        )
        self.head = nn.Linear(h, n_layers * k * r)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, emb: torch.Tensor, sims: torch.Tensor) -> torch.Tensor:
        feats = torch.cat([emb, sims], dim=-1)
        logits = self.head(self.trunk(feats)).view(-1, self.n_layers, self.k, self.r)
        logits = logits / self.settings.temperature
        if self.settings.gate == "softmax":
            return torch.softmax(logits, dim=2)
        return torch.sigmoid(logits)


class DisenLoRAModel(ComposedModel):
    """Base LM + K frozen LoRA experts + the hypernetwork that gates them per input."""

    config_file = CONFIG_FILE
    weights_file = WEIGHTS_FILE

    def __init__(
        self,
        peft_model: nn.Module,
        adapters: Sequence[str],
        centroids: torch.Tensor,
        settings: HyperSettings | None = None,
    ):
        super().__init__(peft_model, adapters)
        settings = settings or HyperSettings()
        c = torch.nn.functional.normalize(torch.as_tensor(centroids, dtype=torch.float32), dim=-1)
        if c.shape[0] != len(adapters):
            raise ConfigError(f"{c.shape[0]} centroids for {len(adapters)} experts")
        self.register_buffer("centroids", c)
        r = self._layers[0].r
        self.hypernet = HyperNetwork(c.shape[1], len(adapters), len(self._layers), r, settings)
        self.settings = settings

    @property
    def gating(self) -> nn.Module:
        return self.hypernet

    def gating_config(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "centroids": self.centroids.tolist(),
            "hyper": self.settings.to_dict(),
            "layers": self.layer_names,
            "k": self.hypernet.k,
            "r": self.hypernet.r,
            "enc_dim": int(self.centroids.shape[1]),
        }

    def gates(self, embeddings: torch.Tensor) -> torch.Tensor:
        """G for a batch of encodings (B, d) -> (B, L, K, r)."""
        e = torch.nn.functional.normalize(embeddings.float().to(self.centroids.device), dim=-1)
        return self.hypernet(e, e @ self.centroids.T)


def load_experts(base_model: nn.Module, expert_dirs: Sequence[str | Path]) -> tuple[nn.Module, list[str]]:
    """A PeftModel holding every expert adapter (named expert_0..K-1), all frozen."""
    from peft import PeftModel

    if not expert_dirs:
        raise ConfigError("no expert adapters given")
    for d in expert_dirs:
        if not (Path(d) / "adapter_config.json").is_file():
            raise ConfigError(f"{d}: not a PEFT adapter folder (train the experts first)")
    names = [f"expert_{i}" for i in range(len(expert_dirs))]
    pm = PeftModel.from_pretrained(base_model, str(expert_dirs[0]), adapter_name=names[0])
    for name, d in zip(names[1:], expert_dirs[1:]):
        pm.load_adapter(str(d), adapter_name=name)
    pm.eval()
    return pm, names


def build_disenlora(
    base: str,
    expert_dirs: Sequence[str | Path],
    centroids: Any,
    *,
    settings: HyperSettings | None = None,
    quant: str = "none",
    dtype: torch.dtype | None = None,
) -> tuple[DisenLoRAModel, Any]:
    from engine.training.base import load_base_model, load_tokenizer

    tok = load_tokenizer(base)
    model = load_base_model(base, quant=quant, dtype=dtype)
    pm, names = load_experts(model, expert_dirs)
    return DisenLoRAModel(pm, names, torch.as_tensor(centroids), settings), tok


def load_disenlora(
    path: str | Path, *, base: str | None = None, quant: str = "none", dtype: torch.dtype | None = None
) -> tuple[DisenLoRAModel, Any, dict[str, Any]]:
    """Load a trained DisenLoRA folder: (model, tokenizer, its config).

    ``base`` overrides the config's base model (a folder, a short name or a hub id);
    expert folders are read relative to ``path`` (see engine/training/artifacts.py).
    """
    from engine.training.base import resolve_base

    p = Path(path)
    cfg = read_config(p, CONFIG_FILE, what="DisenLoRA", command="bdc train hyper")
    model, tok = build_disenlora(
        base or resolve_base(cfg["base"]),
        resolve_dirs(cfg["experts"], p),
        cfg["centroids"],
        settings=HyperSettings.from_dict(cfg["hyper"]),
        quant=quant,
        dtype=dtype,
    )
    model.hypernet.load_state_dict(load_gating_state(p, WEIGHTS_FILE))
    model.eval()
    return model, tok, cfg


def make_encoder(name: str, model: DisenLoRAModel, tokenizer: Any) -> Any:
    """The encoder Phi the clustering used: MiniLM, or the base model itself (adapters off)."""
    from engine.training.embedding import base_model_encoder, minilm_encoder

    if name == "minilm":
        return minilm_encoder()
    if name == "base":
        enc = base_model_encoder(model.hf_model, tokenizer)
        inner = enc.encode

        def encode(texts: Sequence[str]):
            with model.adapters_disabled():
                return inner(texts)

        enc.encode = encode  # type: ignore[method-assign]
        return enc
    raise ConfigError(f"unknown encoder {name!r}")


def train_hypernetwork(
    base: str,
    expert_dirs: Sequence[str | Path],
    clusters: dict[str, Any],
    examples: Sequence[Any],
    out_dir: str | Path,
    *,
    hyper: HyperSettings | None = None,
    train: TrainSettings | None = None,
    encoder: Any = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> LoopResult:
    """Train f only (experts and base frozen) on shuffled input/output pairs; save to
    ``out_dir`` (``disenlora.json`` + ``hypernet.safetensors``) when finished. Resumable."""
    from engine.training.base import model_id
    from engine.training.data import collate, encode_pair
    from engine.training.loss import causal_lm_loss

    train = train or TrainSettings(lr=1e-3)
    torch.manual_seed(train.seed)
    model, tok = build_disenlora(base, expert_dirs, clusters["centroids"], settings=hyper, quant=train.quant)
    enc_name = clusters.get("encoder") or "minilm"
    enc = encoder or make_encoder(enc_name, model, tok)
    embs = torch.as_tensor(enc.encode([ex.input for ex in examples]), dtype=torch.float32)
    if embs.shape[1] != model.centroids.shape[1]:
        raise ConfigError(
            f"encoder gives {embs.shape[1]}-d vectors but the centroids are {model.centroids.shape[1]}-d; "
            "use the encoder the clustering used"
        )
    encoded = [encode_pair(tok, ex.input, ex.output, train.max_length) for ex in examples]
    params = {f"hypernet.{n}": p for n, p in model.hypernet.named_parameters()}
    train_items, eval_items = split_held_out(len(encoded), train.eval_fraction, train.seed)

    def batch_of(items: list[int]) -> dict[str, Any]:
        b = collate([encoded[i] for i in items], tok.pad_token_id)
        b["embeddings"] = embs[items]
        return b

    def make_batch(idx: list[int]) -> dict[str, Any]:
        return batch_of([train_items[i] for i in idx])

    def loss_fn(batch: dict[str, Any]):
        with model.gated(model.gates(batch["embeddings"])):
            return causal_lm_loss(model.peft_model, batch["input_ids"], batch["labels"], batch.get("attention_mask"))

    out = Path(out_dir)
    result = run_loop(
        module=model,
        params=params,
        n_items=len(train_items),
        make_batch=make_batch,
        loss_fn=loss_fn,
        settings=train,
        ckpt_dir=out / "checkpoint",
        progress=tagged(progress, adapter="hypernet"),
        should_stop=should_stop,
        evaluate=held_out_loss(loss_fn, batch_of, eval_items, train.batch_size) if eval_items else None,
    )
    from engine.training.ddp import DataParallel

    if result.status == "done" and DataParallel().main:  # data-parallel: the main process writes
        model.save(
            out,
            {
                "base": model_id(base),
                "experts": relative_dirs(expert_dirs, out),
                "encoder": getattr(enc, "name", enc_name),
            },
        )
        (out / "training.json").write_text(
            json.dumps({"losses": result.losses, "step": result.step, "train": train.to_dict()})
        )
    return result
