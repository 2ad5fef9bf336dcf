"""The input-aware hypernetwork f (paper eq. 14) and the DisenLoRA model (eq. 15-18).

    G_i = f(e_i, <cos(e_i, mu_1), ..., cos(e_i, mu_K)>),   G_i in R^{L x K x r}

``L`` is the number of adapted linear layers: every adapted projection of every decoder
layer gets its own rank-wise gates. :class:`DisenLoRAModel` owns a peft model holding the
K expert adapters whose LoRA layers are replaced by :class:`ComposedLoraLayer`; each
forward computes G from the batch's encodings and hands every layer its slice for that
forward only (the paper's release passed the input through a global instead).

Training (:func:`train_hypernetwork`): base and experts frozen, only f trains, with
cross-entropy on shuffled input/output pairs of the training data.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from engine.errors import ConfigError
from engine.training.config import HyperSettings, TrainSettings
from engine.training.layer import ComposedLoraLayer
from engine.training.loop import LoopResult, Progress, ShouldStop, run_loop, tagged

CONFIG_FILE = "disenlora.json"
# below this many new tokens ``auto`` folds the rank-K*r pair instead of the weights.
# Measured (bench/composed_inference.py, Qwen2.5-Coder-0.5B, 2 CPU cores, 16 new tokens):
# with the fused addmm fold both are within noise of each other (0.91x vs 0.90x of a merged
# LoRA, medians); the weight fold has no per-token cost, so it wins for anything longer.
FOLD_WEIGHTS_MIN_TOKENS = 16
WEIGHTS_FILE = "hypernet.pt"


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


class DisenLoRAModel(nn.Module):
    """Base LM + K frozen LoRA experts + the hypernetwork that gates them per input."""

    def __init__(
        self,
        peft_model: nn.Module,
        adapters: Sequence[str],
        centroids: torch.Tensor,
        settings: HyperSettings | None = None,
    ):
        super().__init__()
        settings = settings or HyperSettings()
        for p in peft_model.parameters():
            p.requires_grad_(False)
        self.peft_model = peft_model
        layers = compose_lora_layers(peft_model, adapters)
        self.layer_names = list(layers)
        # a plain list: the layers are already registered inside peft_model
        self._layers: list[ComposedLoraLayer] = list(layers.values())
        self.adapters = list(adapters)
        c = torch.nn.functional.normalize(torch.as_tensor(centroids, dtype=torch.float32), dim=-1)
        if c.shape[0] != len(adapters):
            raise ConfigError(f"{c.shape[0]} centroids for {len(adapters)} experts")
        self.register_buffer("centroids", c)
        r = self._layers[0].r
        self.hypernet = HyperNetwork(c.shape[1], len(adapters), len(self._layers), r, settings)
        self.settings = settings

    @property
    def layers(self) -> list[ComposedLoraLayer]:
        return self._layers

    @property
    def hf_model(self) -> nn.Module:
        """The underlying transformers model (its LoRA layers are the composed ones)."""
        return self.peft_model.get_base_model()

    def gates(self, embeddings: torch.Tensor) -> torch.Tensor:
        """G for a batch of encodings (B, d) -> (B, L, K, r)."""
        e = torch.nn.functional.normalize(embeddings.float().to(self.centroids.device), dim=-1)
        return self.hypernet(e, e @ self.centroids.T)

    @contextlib.contextmanager
    def gated(self, gates: torch.Tensor) -> Iterator[None]:
        """Give every layer its (B, K*r) slice of ``gates`` (B, L, K, r) for the block."""
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
        """Fast path for one input: bake its gate (L, K, r) into every layer."""
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
        per token, but one fused pass over every adapted weight per input, plus a backup
        copy restored afterwards), ``lowrank`` uses one rank-K*r
        pair per layer (no fixed cost, a small cost per token), ``auto`` picks ``weights``
        for generations of at least FOLD_WEIGHTS_MIN_TOKENS new tokens and ``lowrank`` for
        shorter ones (4-bit bases always get ``lowrank``); ``none`` always uses the stacked
        path. Batches of several inputs always use the stacked path.
        """
        if fold not in ("auto", "weights", "lowrank", "none"):
            raise ConfigError(f"fold must be auto, weights, lowrank or none, got {fold!r}")
        g = self.gates(embeddings)
        if input_ids.shape[0] == 1 and fold != "none":
            if fold == "auto":
                n_new = gen_kwargs.get("max_new_tokens") or 0
                fold = "weights" if n_new >= FOLD_WEIGHTS_MIN_TOKENS else "lowrank"
            with self.folded(g[0], into_weights=(fold == "weights")):
                return self.hf_model.generate(input_ids=input_ids, **gen_kwargs)
        with self.gated(g):
            return self.hf_model.generate(input_ids=input_ids, **gen_kwargs)

    # ---- persistence --------------------------------------------------------------
    def save(self, out_dir: str | Path, *, expert_dirs: Sequence[str], base: str, encoder: str) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(self.hypernet.state_dict(), out / WEIGHTS_FILE)
        (out / CONFIG_FILE).write_text(
            json.dumps(
                {
                    "experts": [str(Path(d).resolve()) for d in expert_dirs],
                    "base": base,
                    "encoder": encoder,
                    "centroids": self.centroids.tolist(),
                    "hyper": self.settings.to_dict(),
                    "layers": self.layer_names,
                }
            )
        )
        return out


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
    """Load a trained DisenLoRA folder: (model, tokenizer, its config)."""
    p = Path(path)
    if not (p / CONFIG_FILE).is_file():
        raise ConfigError(f"{p}: not a DisenLoRA folder (no {CONFIG_FILE}); run `bdc train hyper`")
    cfg = json.loads((p / CONFIG_FILE).read_text())
    model, tok = build_disenlora(
        base or cfg["base"], cfg["experts"], cfg["centroids"],
        settings=HyperSettings.from_dict(cfg["hyper"]), quant=quant, dtype=dtype,
    )
    model.hypernet.load_state_dict(torch.load(p / WEIGHTS_FILE, map_location="cpu"))
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
    ``out_dir`` (``disenlora.json`` + ``hypernet.pt``) when finished. Resumable."""
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

    def make_batch(idx: list[int]) -> dict[str, Any]:
        b = collate([encoded[i] for i in idx], tok.pad_token_id)
        b["embeddings"] = embs[idx]
        return b

    def loss_fn(batch: dict[str, Any]):
        with model.gated(model.gates(batch["embeddings"])):
            return causal_lm_loss(
                model.peft_model, batch["input_ids"], batch["labels"], batch.get("attention_mask")
            )

    out = Path(out_dir)
    result = run_loop(
        module=model,
        params=params,
        n_items=len(encoded),
        make_batch=make_batch,
        loss_fn=loss_fn,
        settings=train,
        ckpt_dir=out / "checkpoint",
        progress=tagged(progress, adapter="hypernet"),
        should_stop=should_stop,
    )
    from engine.training.ddp import DataParallel

    if result.status == "done" and DataParallel().main:  # data-parallel: the main process writes
        model.save(out, expert_dirs=[str(d) for d in expert_dirs], base=base, encoder=getattr(enc, "name", enc_name))
        (out / "training.json").write_text(
            json.dumps({"losses": result.losses, "step": result.step, "train": train.to_dict()})
        )
    return result
