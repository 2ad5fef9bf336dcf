"""Tokenising input/output pairs for causal-LM SFT: loss only on the output tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.training.base import format_prompt

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


def encode_pair(tokenizer: Any, inp: str, out: str, max_length: int) -> Encoded:
    """Prompt (formatted like at inference) + output + EOS; the prompt is cut from the left
    when the pair is too long, so the supervised output survives truncation."""
    prompt_ids = tokenizer(format_prompt(tokenizer, inp), add_special_tokens=True)["input_ids"]
    out_ids = tokenizer(out, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        out_ids = out_ids + [tokenizer.eos_token_id]
    out_ids = out_ids[:max_length]
    room = max_length - len(out_ids)
    prompt_ids = prompt_ids[-room:] if room > 0 else []
    return Encoded(prompt_ids + out_ids, [IGNORE] * len(prompt_ids) + out_ids)


def collate(batch: Sequence[Encoded], pad_id: int) -> dict[str, Any]:
    import torch

    n = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, e in enumerate(batch):
        L = len(e.input_ids)
        ids[i, :L] = torch.tensor(e.input_ids)
        labels[i, :L] = torch.tensor(e.labels)
        mask[i, :L] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def n_target_tokens(batch: dict[str, Any]) -> int:
    return int((batch["labels"] != IGNORE).sum())
