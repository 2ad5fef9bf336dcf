"""Twin-Merging (Lu et al., NeurIPS 2024) over DisenLoRA's cluster experts (tasks = clusters).

Knowledge modularisation, per adapted linear layer, from the experts' task vectors
dW_k = s_k B_k A_k:

1. shared expert   dW_s = lambda * sum_k dW_k (task arithmetic, ``shared="linear"``) or
   lambda * TIES(dW_1..dW_K) (trim to ``density``, elect signs, disjoint mean; ``"ties"``),
   kept as LoRA factors of rank ``shared_rank`` (default K*r: exact for task arithmetic,
   an SVD truncation of the dense TIES result);
2. exclusive knowledge  v_k = dW_k - dW_s, compressed by truncated SVD to rank
   ``exclusive_rank`` (default the experts' r): B'_k = U S, A'_k = V^T.
   Because dW_k and dW_s are stored low-rank, v_k = [s_k B_k, -B_s] [A_k; A_s] is
   decomposed without forming it (QR of both factors, SVD of the small core), so the
   build costs no dense SVD for task arithmetic.

The shared and exclusive factors are saved as standard PEFT adapter folders
(``OUT/twin/shared``, ``OUT/twin/exclusive_<k>``; alpha = r, so scaling 1).

Dynamic merging: a router (engine/training/router.py) gives weights w = softmax(R(e(x))/T)
over the K clusters, and each input runs with

    W = W_0 + dW_s + sum_k w_k v_k

composed per batch row by :class:`ComposedLoraLayer` with the gate
[1]*r_shared ++ [w_1]*r_ex ++ ... ++ [w_K]*r_ex (no weights are rewritten for a batch, so
rows with different routes are exact; one input alone can fold its route into the weights).
:class:`TwinModel` reuses DisenLoRAModel's gating, folding and generation; only the gates
come from the router instead of the hypernetwork.

Adapted from the paper: the router reads the encoder the clustering used (MiniLM, or the
base model with adapters off; ``clusters.json`` names it) rather than the merged model's
hidden states, and it is trained on the training inputs with their cluster ids (a held-out
split reports its accuracy) because clusters, unlike the paper's tasks, have no separate
labelled validation set.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ConfigError
from engine.training.artifacts import load_gating_state, read_config, relative_dirs
from engine.training.composed import ComposedModel
from engine.training.config import DEFAULT_SCALING, SHARED_METHODS, TrainSettings, TwinSettings
from engine.training.hypernet import load_experts
from engine.training.loop import LoopResult, Progress, ShouldStop
from engine.training.router import Router, RouterSettings, router_train_settings, train_router

CONFIG_FILE = "twin.json"
ROUTER_FILE = "router.safetensors"
FORMAT = "bdc-twin"
BUILD_FILE = "modularisation.json"
SHARED = "shared"
__all__ = ["DEFAULT_SCALING", "SHARED_METHODS", "TwinModel", "TwinSettings", "load_twin", "save_router", "train_twin"]


def exclusive_name(k: int) -> str:
    return f"exclusive_{k}"


# ---- knowledge modularisation ------------------------------------------------------------
def _pad(b: torch.Tensor, a: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the first ``rank`` components; zero components pad a layer whose product has
    lower rank, so every layer of an adapter has one rank (PEFT stores one r per adapter)."""
    keep = min(rank, b.shape[1])
    bp = b.new_zeros(b.shape[0], rank)
    ap = a.new_zeros(rank, a.shape[1])
    bp[:, :keep] = b[:, :keep]
    ap[:keep] = a[:keep]
    return bp, ap


def factored_svd(b: torch.Tensor, a: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of ``b @ a`` as (U S, V^T) with ``rank`` columns/rows, without forming it."""
    b, a = b.double(), a.double()
    qb, rb = torch.linalg.qr(b)
    qa, ra = torch.linalg.qr(a.T)
    u, s, vh = torch.linalg.svd(rb @ ra.T, full_matrices=False)
    return _pad((qb @ u) * s, vh @ qa.T, rank)


def dense_svd(w: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Truncated SVD of a dense matrix as (U S, V^T) with ``rank`` columns/rows."""
    u, s, vh = torch.linalg.svd(w.float(), full_matrices=False)
    return _pad(u * s, vh, rank)


def expert_factors(lora_layer: nn.Module, names: Sequence[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(s_k B_k, A_k) of every expert in one peft LoRA layer, so dW_k = first @ second."""
    return [
        (
            lora_layer.lora_B[n].weight.detach().double() * float(lora_layer.scaling[n]),
            lora_layer.lora_A[n].weight.detach().double(),
        )
        for n in names
    ]


def shared_factors(
    factors: Sequence[tuple[torch.Tensor, torch.Tensor]], settings: TwinSettings, rank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The shared expert dW_s of one layer as rank-``rank`` factors."""
    lam = settings.lam
    if settings.shared == "linear":
        # lambda * sum_k B_k A_k = [lambda B_1 .. lambda B_K] [A_1; ..; A_K]: exact at rank K*r
        return factored_svd(torch.cat([b * lam for b, _ in factors], 1), torch.cat([a for _, a in factors], 0), rank)
    from peft.utils.merge_utils import ties

    dense = [(b @ a).float() for b, a in factors]
    merged = ties(dense, torch.full((len(dense),), lam), settings.density)
    return dense_svd(merged, rank)


def exclusive_factors(
    expert: tuple[torch.Tensor, torch.Tensor], shared: tuple[torch.Tensor, torch.Tensor], rank: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """v_k = dW_k - dW_s = [s_k B_k, -B_s] [A_k; A_s], compressed to ``rank``."""
    (bk, ak), (bs, as_) = expert, shared
    return factored_svd(torch.cat([bk, -bs.double()], 1), torch.cat([ak, as_.double()], 0), rank)


def modularise(
    peft_model: nn.Module, names: Sequence[str], settings: TwinSettings, *, progress: Progress | None = None
) -> tuple[dict[str, list[tuple[torch.Tensor, torch.Tensor]]], int, int]:
    """Per LoRA layer name: [shared, exclusive_0..K-1] factors; and the two ranks used.

    Cost (Qwen2.5-Coder-0.5B, 168 layers, K=3, r=8, 2 CPU cores, model load included):
    about 25 s for task arithmetic (factored SVDs only), about 3 min for TIES, where peft's
    trim/elect/merge over the dense dW_k and the dense SVD take ~1.5 s each per MLP layer.
    """
    from peft.tuners.lora import LoraLayer

    layers = [(n, m) for n, m in peft_model.named_modules() if isinstance(m, LoraLayer)]
    if not layers:
        raise ConfigError("the experts have no LoRA layers")
    r_exp = {int(m.r[n]) for _, m in layers for n in names}
    if len(r_exp) != 1:
        raise ConfigError(f"the experts must share one LoRA rank, got {sorted(r_exp)}")
    r = r_exp.pop()
    r_shared = settings.shared_rank or len(names) * r
    r_ex = settings.exclusive_rank or r
    out = {}
    for i, (name, layer) in enumerate(layers):
        factors = expert_factors(layer, names)
        shared = shared_factors(factors, settings, r_shared)
        out[name] = [shared] + [exclusive_factors(f, shared, r_ex) for f in factors]
        if progress:
            progress({"event": "modularising", "layer": i + 1, "layers": len(layers)})
    return out, r_shared, r_ex


def build_twin_adapters(
    base: str,
    expert_dirs: Sequence[str | Path],
    out_dir: str | Path,
    settings: TwinSettings,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Modularise the experts and save ``shared`` and ``exclusive_<k>`` PEFT folders in
    ``out_dir``; returns what was built (also written to ``modularisation.json``)."""
    from peft import LoraConfig

    from engine.training.base import load_base_model, model_id, name_base_model

    if len(expert_dirs) < 2:
        raise ConfigError("Twin-Merging needs at least two expert adapters")
    model = load_base_model(base, dtype=torch.float32)
    pm, names = load_experts(model, expert_dirs)
    parts, r_shared, r_ex = modularise(pm, names, settings, progress=progress)
    targets = sorted(pm.peft_config[names[0]].target_modules)
    new = [SHARED] + [exclusive_name(k) for k in range(len(names))]
    for adapter, rank in zip(new, [r_shared] + [r_ex] * len(names)):
        pm.add_adapter(
            adapter,
            LoraConfig(
                r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=targets, bias="none", task_type="CAUSAL_LM"
            ),
        )
    with torch.no_grad():
        for layer_name, factors in parts.items():
            layer = pm.get_submodule(layer_name)
            for adapter, (b, a) in zip(new, factors):
                layer.lora_B[adapter].weight.copy_(b)
                layer.lora_A[adapter].weight.copy_(a)
    out = Path(out_dir)
    for adapter in new:
        shutil.rmtree(out / adapter, ignore_errors=True)
    name_base_model(pm, base, new)
    pm.save_pretrained(str(out), selected_adapters=new)
    info = {
        "experts": relative_dirs(expert_dirs, out),
        "base": model_id(base),
        "twin": settings.to_dict(),
        "shared_rank": r_shared,
        "exclusive_rank": r_ex,
        "layers": len(parts),
    }
    (out / BUILD_FILE).write_text(json.dumps(info))
    return info


# ---- dynamic merging ----------------------------------------------------------------------
class TwinModel(ComposedModel):
    """Base LM + shared adapter + K exclusive adapters, weighted per input by the router.

    A :class:`~engine.training.composed.ComposedModel` like DisenLoRA: gating, folding,
    generation and persistence are the shared ones; only the gates come from the router.
    """

    config_file = CONFIG_FILE
    weights_file = ROUTER_FILE

    def __init__(self, peft_model: nn.Module, adapters: Sequence[str], router: Router):
        super().__init__(peft_model, adapters)
        self.router = router
        ranks = {tuple(layer.ranks) for layer in self._layers}
        if len(ranks) != 1:
            raise ConfigError(f"the twin adapters have different ranks in different layers: {sorted(ranks)}")
        self.ranks = list(ranks.pop())
        if len(self.ranks) != router.k + 1:
            raise ConfigError(f"{len(self.ranks) - 1} exclusive adapters for a router over {router.k} clusters")
        # gate slot -> adapter (0 = shared, k + 1 = exclusive k)
        owner = torch.repeat_interleave(torch.arange(len(self.ranks)), torch.tensor(self.ranks))
        self.register_buffer("slot_owner", owner, persistent=False)

    @property
    def gating(self) -> nn.Module:
        return self.router

    def gating_config(self) -> dict[str, Any]:
        return router_config(self.router)

    def routing(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Routing weights (B, K) for a batch of encodings (B, d)."""
        return self.router.weights(embeddings.float())

    def gate_for(self, weights: torch.Tensor) -> torch.Tensor:
        """One layer's gates (B, gate_size) for routing weights (B, K): [1]*r_shared ++ [w_k]*r_ex."""
        per_adapter = torch.cat([torch.ones_like(weights[:, :1]), weights], dim=1)
        return per_adapter[:, self.slot_owner]

    def gates(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, L, gate_size): the routed gate, the same in every layer (the paper's weights
        are per task, not per layer)."""
        return self.gate_for(self.routing(embeddings)).unsqueeze(1).expand(-1, len(self._layers), -1)


def router_config(router: Router) -> dict[str, Any]:
    """What rebuilds a router besides its weights (part of ``twin.json``)."""
    return {"format": FORMAT, "router": router.settings.to_dict(), "k": router.k, "enc_dim": router.enc_dim}


def save_router(router: Router, out_dir: str | Path, meta: dict[str, Any]) -> Path:
    """``router.safetensors`` + ``twin.json`` (``meta`` plus the router's shape and settings).

    The router is trained without the LM, so this is the writer a fresh training uses;
    :meth:`TwinModel.save` writes the same files from a loaded model."""
    from engine.training.artifacts import save_gating

    return save_gating(
        router, out_dir, {**meta, **router_config(router)}, config_file=CONFIG_FILE, weights_file=ROUTER_FILE
    )


def load_twin_adapters(base_model: nn.Module, path: str | Path, k: int) -> tuple[nn.Module, list[str]]:
    """A PeftModel holding ``shared`` and ``exclusive_0..K-1`` from a twin folder."""
    from peft import PeftModel

    p = Path(path)
    names = [SHARED] + [exclusive_name(i) for i in range(k)]
    missing = [n for n in names if not (p / n / "adapter_config.json").is_file()]
    if missing:
        raise ConfigError(f"{p}: missing twin adapter(s) {', '.join(missing)}; run `bdc train twin`")
    pm = PeftModel.from_pretrained(base_model, str(p / SHARED), adapter_name=SHARED)
    for n in names[1:]:
        pm.load_adapter(str(p / n), adapter_name=n)
    pm.eval()
    return pm, names


def load_twin(
    path: str | Path, *, base: str | None = None, quant: str = "none", dtype: torch.dtype | None = None
) -> tuple[TwinModel, Any, dict[str, Any]]:
    """Load a trained twin folder: (model, tokenizer, its config)."""
    from engine.training.base import load_base_model, load_tokenizer, resolve_base

    p = Path(path)
    cfg = read_config(p, CONFIG_FILE, what="Twin-Merging", command="bdc train twin")
    base = base or resolve_base(cfg["base"])
    tok = load_tokenizer(base)
    pm, names = load_twin_adapters(load_base_model(base, quant=quant, dtype=dtype), p, int(cfg["k"]))
    router = Router(int(cfg["enc_dim"]), int(cfg["k"]), RouterSettings.from_dict(cfg["router"]))
    router.load_state_dict(load_gating_state(p, ROUTER_FILE))
    router.eval()
    model = TwinModel(pm, names, router)
    model.eval()
    return model, tok, cfg


def train_twin(
    base: str,
    expert_dirs: Sequence[str | Path],
    clusters: dict[str, Any],
    examples: Sequence[Any],
    out_dir: str | Path,
    *,
    twin: TwinSettings | None = None,
    router: RouterSettings | None = None,
    train: TrainSettings | None = None,
    encoder: Any = None,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
) -> tuple[LoopResult, dict[str, Any]]:
    """Modularise the experts (skipped when ``out_dir`` already holds the same build),
    then train the router on the examples' inputs and cluster ids; on completion save
    ``router.pt`` + ``twin.json``. Resumable: router training uses the shared loop."""
    from engine.training.base import model_id
    from engine.training.embedding import get_encoder

    twin = twin or TwinSettings()
    router = router or RouterSettings()
    train = train or router_train_settings()
    labels = list(clusters["labels"])
    if len(labels) != len(examples):
        raise ConfigError(
            f"clustering has {len(labels)} assignments but the data has {len(examples)} examples; "
            "cluster this same file first"
        )
    if len(expert_dirs) != int(clusters["k"]):
        raise ConfigError(f"{len(expert_dirs)} experts for {clusters['k']} clusters")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {"experts": relative_dirs(expert_dirs, out), "base": model_id(base), "twin": twin.to_dict()}
    build = json.loads((out / BUILD_FILE).read_text()) if (out / BUILD_FILE).is_file() else {}
    emit = progress or (lambda _e: None)
    if {k: build.get(k) for k in wanted} != wanted:
        build = build_twin_adapters(base, expert_dirs, out, twin, progress=lambda ev: emit({"adapter": "twin", **ev}))
    emit(
        {
            "event": "modularised",
            "adapter": "twin",
            "layers": build["layers"],
            "shared_rank": build["shared_rank"],
            "exclusive_rank": build["exclusive_rank"],
        }
    )
    enc_name = clusters.get("encoder") or "minilm"
    enc = encoder or get_encoder(enc_name, base)
    emb = torch.as_tensor(enc.encode([ex.input for ex in examples]), dtype=torch.float32)
    model, result, metrics = train_router(
        emb,
        labels,
        int(clusters["k"]),
        out / "checkpoint",
        settings=router,
        train=train,
        progress=(lambda ev: emit({"adapter": "router", **ev})),
        should_stop=should_stop,
    )
    if result.status == "done":
        save_router(
            model,
            out,
            {
                "base": wanted["base"],
                "encoder": getattr(enc, "name", enc_name),
                "experts": wanted["experts"],
                "twin": twin.to_dict(),
                "shared_rank": build["shared_rank"],
                "exclusive_rank": build["exclusive_rank"],
                "metrics": metrics,
                "losses": result.losses,
                "train": train.to_dict(),
            },
        )
    return result, metrics
