from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import PeftModel

from engine.training.base import load_base_model
from engine.training.hypernet import build_disenlora
from engine.training.merge import merge_adapters


@pytest.mark.parametrize("method", ["linear", "cat", "ties", "dare_linear", "dare_ties"])
def test_merge_produces_loadable_adapter(tiny_base, tiny_experts, tmp_path, method):
    out = merge_adapters(tiny_base, tiny_experts, method, tmp_path / method)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    base = load_base_model(tiny_base, dtype=torch.float32)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        ref = base(input_ids=ids).logits.clone()
        pm = PeftModel.from_pretrained(base, str(out))
        got = pm(input_ids=ids).logits
    assert torch.isfinite(got).all()
    assert not torch.allclose(got, ref, atol=1e-5)  # the merge does something


def test_cat_merge_equals_uniform_composition(tiny_base, tiny_experts, tmp_path):
    """cat with weights w is exactly dW = sum_k w_k dW_k, i.e. the composed model with all
    gates = w: ties the merge baseline and the composed layer to the same arithmetic."""
    out = merge_adapters(tiny_base, tiny_experts, "cat", tmp_path / "cat")
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        merged = PeftModel.from_pretrained(load_base_model(tiny_base, dtype=torch.float32), str(out))(
            input_ids=ids
        ).logits
        model, _ = build_disenlora(tiny_base, tiny_experts, np.eye(3, 4, dtype=np.float32), dtype=torch.float32)
        L, K, r = len(model.layers), model.layers[0].k, model.layers[0].r
        with model.gated(torch.full((1, L, K, r), 1.0 / K)):
            composed = model.peft_model(input_ids=ids).logits
    torch.testing.assert_close(merged, composed, rtol=1e-4, atol=1e-5)


def test_unknown_method_is_a_user_error(tiny_base, tiny_experts, tmp_path):
    from engine.errors import ConfigError

    with pytest.raises(ConfigError):
        merge_adapters(tiny_base, tiny_experts, "twin", tmp_path / "x")
