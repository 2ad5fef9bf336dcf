"""4-bit (nf4, QLoRA) LoRA gradients match a reference on the dequantised weights.

Also guards the bitsandbytes 0.50 AVX512-BF16 trap: the reference check runs *after* an
inference forward, which is exactly when bnb would repack the weights if we had not
disabled it, breaking the backward pass.
"""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from engine.training.base import load_base_model

bnb = pytest.importorskip("bitsandbytes")


def _lora(model):
    torch.manual_seed(0)
    cfg = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        init_lora_weights=False,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    return get_peft_model(model, cfg)


def _grads(tiny_base):
    ids = torch.tensor([[3, 17, 42, 99, 7, 8, 120, 5]])
    q = load_base_model(tiny_base, quant="4bit", dtype=torch.float32, for_training=True)
    assert all(not m.support_avx512bf16_for_cpu for m in q.modules() if isinstance(m, bnb.nn.Linear4bit))
    q.eval()
    with torch.no_grad():
        q(input_ids=ids)  # an inference forward first: the trap's trigger

    ref = load_base_model(tiny_base, dtype=torch.float32, for_training=True)
    n_quant = 0
    for name, m in q.named_modules():
        if isinstance(m, bnb.nn.Linear4bit):
            assert not getattr(m.weight.quant_state, "packing_format_for_cpu", False), "weights were repacked"
            deq = bnb.functional.dequantize_4bit(m.weight.data, m.weight.quant_state)
            target = ref.get_submodule(name)
            target.weight.data.copy_(deq.reshape(target.weight.shape).float())
            n_quant += 1
    assert n_quant == 14  # 7 projections x 2 layers
    pq = _lora(q)
    pr = _lora(ref)
    pr.load_state_dict({k: v for k, v in pq.state_dict().items() if "lora_" in k}, strict=False)

    out = {}
    for tag, m in (("q", pq), ("ref", pr)):
        m.train()
        m.zero_grad()
        m(input_ids=ids, labels=ids).loss.backward()
        out[tag] = {n: p.grad.detach().clone() for n, p in m.named_parameters() if p.requires_grad}
    return out


def test_4bit_lora_grads_match_dequantised_reference(tiny_base):
    g = _grads(tiny_base)
    assert g["q"].keys() == g["ref"].keys() and len(g["q"]) == 28
    for name in g["q"]:
        assert g["q"][name].abs().sum() > 0, name
        torch.testing.assert_close(g["q"][name], g["ref"][name], rtol=2e-3, atol=1e-5, msg=name)
