"""The chunked, labelled-positions-only loss equals transformers' loss (value and LoRA
gradients), and 4-bit training models on CPU stay lean (bf16 leftovers, checkpointing,
no storage shared with the checkpoint file)."""

from __future__ import annotations

import shutil

import pytest
import torch
from peft import LoraConfig, get_peft_model

from engine.training.base import load_base_model
from engine.training.loss import causal_lm_loss


def _checkpointing(model) -> bool:
    return bool(model.is_activation_checkpointing)


def _peft(tiny_base):
    torch.manual_seed(0)
    model = load_base_model(tiny_base, dtype=torch.float32, for_training=True)
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = LoraConfig(
        r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False, target_modules=["q_proj", "v_proj", "down_proj"]
    )
    pm = get_peft_model(model, cfg)
    pm.train()
    return pm


def _batch():
    ids = torch.tensor([[3, 17, 42, 99, 7, 8, 120, 5, 9, 11], [4, 5, 6, 7, 8, 9, 0, 0, 0, 0]])
    mask = (torch.arange(10) < torch.tensor([[10], [6]])).long()
    labels = ids.clone()
    labels[:, :3] = -100  # prompt
    labels[mask == 0] = -100  # padding
    return ids, mask, labels


@pytest.mark.parametrize("chunk", [3, 256])
def test_chunked_loss_matches_transformers_loss_and_grads(tiny_base, chunk):
    pm = _peft(tiny_base)
    ids, mask, labels = _batch()
    ref = pm(input_ids=ids, attention_mask=mask, labels=labels).loss
    ref.backward()
    g_ref = {n: p.grad.clone() for n, p in pm.named_parameters() if p.requires_grad}
    pm.zero_grad(set_to_none=True)
    ours = causal_lm_loss(pm, ids, labels, mask, chunk=chunk)
    ours.backward()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    assert len(g_ref) == 12
    for n, p in pm.named_parameters():
        if p.requires_grad:
            assert p.grad.abs().sum() > 0, n
            torch.testing.assert_close(p.grad, g_ref[n], rtol=1e-4, atol=1e-6, msg=n)


def test_no_labelled_positions_gives_zero_with_graph(tiny_base):
    pm = _peft(tiny_base)
    ids, mask, _ = _batch()
    loss = causal_lm_loss(pm, ids, torch.full_like(ids, -100), mask)
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_4bit_training_model_on_cpu_is_lean(tiny_base):
    pytest.importorskip("bitsandbytes")
    model = load_base_model(tiny_base, quant="4bit", dtype=torch.bfloat16, for_training=True)
    assert _checkpointing(model)
    plain = [p for p in model.parameters() if p.__class__.__name__ != "Params4bit"]
    assert plain and all(p.dtype == torch.bfloat16 for p in plain)  # no fp32 upcast on CPU
    assert not any(p.requires_grad for p in model.parameters())
    off = load_base_model(
        tiny_base, quant="4bit", dtype=torch.bfloat16, for_training=True, gradient_checkpointing=False, upcast_fp32=True
    )
    assert not _checkpointing(off)
    assert all(p.dtype == torch.float32 for p in off.parameters() if p.__class__.__name__ != "Params4bit")


def test_4bit_model_does_not_keep_the_checkpoint_mapped(tiny_base, tmp_path):
    """Unquantised params that are views of the mmapped safetensors file keep every page
    read while quantising resident; the loader copies them out so the mapping goes."""
    pytest.importorskip("bitsandbytes")
    base = shutil.copytree(tiny_base, tmp_path / "base")  # a path no other test maps
    model = load_base_model(str(base), quant="4bit", dtype=torch.float32, for_training=True)
    with open("/proc/self/maps") as f:
        mapped = f.read()
    assert str(base) not in mapped
    assert model.get_input_embeddings().weight.dtype == torch.float32


def test_training_loads_fix_the_glibc_mmap_threshold():
    import platform

    from engine.training.base import limit_heap_retention

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc-only")
    assert limit_heap_retention() is True
