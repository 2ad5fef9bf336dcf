"""Causal-LM cross-entropy without materialising the logits of the whole batch.

Why: with a large vocabulary the logits dominate training memory. For Qwen2.5-Coder-0.5B
(vocabulary 151,936) a batch of 2 x 256 tokens makes a 155 MB bf16 logits tensor, the loss
upcasts it to a 311 MB fp32 copy, log-softmax keeps another, and the backward pass needs
gradients of each: over a GB, more than the 4-bit model itself (bench/training_memory.py).
Here the loss is computed only on the positions that have a label (SFT masks the prompt,
so that alone often halves the work) and in chunks whose logits are recomputed in the
backward pass instead of stored, so at most one chunk of logits is alive at a time.

The value equals transformers' ``ForCausalLMLoss`` (shift by one, mean over labelled
positions, fp32 logits); models with logit soft-capping or scaling fall back to it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE = -100
DEFAULT_CHUNK = 64  # positions per chunk: ~40 MB of fp32 logits at a 151,936 vocabulary


def _ce_sum(hidden: torch.Tensor, labels: torch.Tensor, head: torch.nn.Module) -> torch.Tensor:
    return F.cross_entropy(head(hidden).float(), labels, reduction="sum")


def _plain_head(base: Any) -> bool:
    cfg = getattr(base, "config", None)
    if getattr(cfg, "final_logit_softcapping", None) is not None:
        return False
    return getattr(cfg, "logits_scaling", 1.0) in (None, 1.0)


def causal_lm_loss(
    model: Any,
    input_ids: torch.Tensor,
    labels: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    *,
    chunk: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Mean next-token cross-entropy over the labelled positions (``labels != -100``).

    ``model`` is a transformers causal LM or a peft model around one (LoRA layers live
    inside the decoder, so calling the decoder directly keeps them active).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    head = base.get_output_embeddings()
    if decoder is None or head is None or not _plain_head(base):
        return model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
    hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    target = labels[:, 1:].to(hidden.device)
    keep = target != IGNORE
    h = hidden[:, :-1][keep]
    y = target[keep]
    n = y.numel()
    if n == 0:  # nothing to learn from: a zero that still depends on the graph
        return hidden.sum() * 0.0
    total = hidden.new_zeros((), dtype=torch.float32)
    for s in range(0, n, chunk):
        hs, ys = h[s : s + chunk], y[s : s + chunk]
        if torch.is_grad_enabled() and hs.requires_grad:
            total = total + checkpoint(_ce_sum, hs, ys, head, use_reentrant=False)
        else:
            total = total + _ce_sum(hs, ys, head)
    return total / n
