from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("BDC_DTYPE", "fp32")  # exact comparisons in fp32


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    from engine.training.tiny import make_tiny_llama

    return str(make_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama", hidden=32, layers=2, heads=2))


def make_random_adapters(base: str, root, k: int, r: int = 4, seed: int = 0) -> list[str]:
    """K LoRA adapters with random (non-zero) A and B, saved as PEFT folders."""
    import torch
    from peft import LoraConfig, get_peft_model

    from engine.training.base import load_base_model

    dirs = []
    for i in range(k):
        torch.manual_seed(seed + i)
        model = load_base_model(base, dtype=torch.float32)
        cfg = LoraConfig(
            r=r,
            lora_alpha=2 * r,
            lora_dropout=0.0,
            target_modules=["q_proj", "v_proj", "down_proj"],
            init_lora_weights=False,
        )
        pm = get_peft_model(model, cfg)
        d = root / f"expert_{i}"
        pm.save_pretrained(str(d))
        dirs.append(str(d))
    return dirs


@pytest.fixture(scope="session")
def tiny_experts(tiny_base, tmp_path_factory):
    return make_random_adapters(tiny_base, tmp_path_factory.mktemp("experts"), k=3)
