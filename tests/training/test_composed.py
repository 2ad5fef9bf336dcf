"""The composed layer (eq. 15-18) against explicit sums, one-hot gates against peft."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.training.base import load_base_model
from engine.training.hypernet import build_disenlora, load_experts


@pytest.fixture()
def composed(tiny_base, tiny_experts):
    model, tok = build_disenlora(tiny_base, tiny_experts, np.eye(3, 8, dtype=np.float32) + 0.1, dtype=torch.float32)
    return model, tok


def test_composed_layer_equals_explicit_sum(composed):
    model, _ = composed
    layer = model.layers[0]
    k, r = layer.k, layer.r
    torch.manual_seed(1)
    x = torch.randn(2, 5, layer.A_cat.shape[1])
    gate = torch.rand(2, k * r)
    layer.gate = gate
    got = layer(x)
    layer.gate = None
    base = layer.base_layer(x)
    for b in range(2):
        g = gate[b].view(k, r)
        expected = base[b].clone()
        for j, name in enumerate(layer.adapters):
            A = layer.lora_A[name].weight
            B = layer.lora_B[name].weight
            expected += layer.scaling[j] * x[b] @ (B @ torch.diag(g[j]) @ A).T
        torch.testing.assert_close(got[b], expected, rtol=1e-5, atol=1e-5)


def test_one_hot_gate_equals_that_expert_alone(tiny_base, tiny_experts, composed):
    model, tok = composed
    ids = tok(["def add(a, b):\n    return a + b"], return_tensors="pt")["input_ids"]
    L, K, r = len(model.layers), model.layers[0].k, model.layers[0].r
    for expert in range(K):
        gates = torch.zeros(1, L, K, r)
        gates[:, :, expert, :] = 1.0
        with torch.no_grad(), model.gated(gates):
            got = model.peft_model(input_ids=ids).logits
        ref_model, names = load_experts(load_base_model(tiny_base, dtype=torch.float32), tiny_experts)
        ref_model.set_adapter(names[expert])
        with torch.no_grad():
            ref = ref_model(input_ids=ids).logits
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    # and the experts really differ, so the check above is not vacuous
    assert not torch.allclose(got, load_base_model(tiny_base, dtype=torch.float32)(input_ids=ids).logits, atol=1e-4)


def test_mixed_batch_rows_get_their_own_composition(composed):
    """Stacked path: each row of a mixed batch equals that row run alone (folded)."""
    model, tok = composed
    ids = tok(["def f(x):\n    return x", "for i in range(3):"], return_tensors="pt", padding=True)
    # left-aligned rows of equal length to avoid padding effects
    n = int(ids["attention_mask"].sum(1).min())
    input_ids = ids["input_ids"][:, :n]
    torch.manual_seed(0)
    for p in model.hypernet.head.parameters():
        torch.nn.init.normal_(p, std=0.5)
    emb = torch.randn(2, model.centroids.shape[1])
    with torch.no_grad():
        batch = model(input_ids=input_ids, embeddings=emb).logits
        g = model.gates(emb)
        assert not torch.allclose(g[0], g[1])
        for row in range(2):
            for mode in (True, False):  # into weights, and the rank-K*r pair
                with model.folded(g[row], into_weights=mode) as how:
                    assert how == ("weight" if mode else "lowrank")
                    single = model.peft_model(input_ids=input_ids[row : row + 1]).logits
                torch.testing.assert_close(batch[row : row + 1], single, rtol=1e-4, atol=1e-5)


def test_unfold_restores_base_weights_exactly(composed):
    model, _ = composed
    before = {n: p.detach().clone() for n, p in model.peft_model.named_parameters()}
    g = torch.rand(len(model.layers), model.layers[0].k, model.layers[0].r)
    with model.folded(g):
        changed = any(not torch.equal(p, before[n]) for n, p in model.peft_model.named_parameters())
    assert changed
    for n, p in model.peft_model.named_parameters():
        assert torch.equal(p, before[n]), n


def test_weight_fold_writes_one_reused_buffer_and_never_the_original(composed):
    """The fold is W0 + dW computed into a buffer the layer keeps; the original weight
    tensor is never written, and unfolding points back at it (no copy either way)."""
    model, _ = composed
    layer = model.layers[0]
    w = layer.base_layer.weight
    original, before = w.data_ptr(), w.detach().clone()
    seen = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        g = torch.rand(len(model.layers), layer.k, layer.r)
        with model.folded(g) as mode:
            assert mode == "weight"
            seen.append(w.data_ptr())
            torch.testing.assert_close(w.detach(), before + layer.delta_weight(g[0].reshape(-1)))
        assert w.data_ptr() == original and torch.equal(w.detach(), before)
    assert seen[0] == seen[1] != original


def test_generate_batch_of_one_and_mixed(composed):
    model, tok = composed
    ids = tok(["def f(x):"], return_tensors="pt")["input_ids"]
    emb = torch.randn(1, model.centroids.shape[1])
    a = model.generate(ids, emb, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    b = model.generate(ids, emb, fold="none", max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert torch.equal(a, b)
    assert a.shape[1] == ids.shape[1] + 5 or a[0, -1] == tok.eos_token_id


def test_disenlora_and_twin_share_one_composed_base():
    """One model part for both methods (peft's config / layer / model split): each
    subclass supplies only where its gates come from; gating, folding, generation and
    saving are the base's, with one signature."""
    import inspect

    from engine.training.composed import ComposedModel
    from engine.training.hypernet import DisenLoRAModel
    from engine.training.twin import TwinModel

    for cls in (DisenLoRAModel, TwinModel):
        assert issubclass(cls, ComposedModel)
        shared = {"gated", "folded", "adapters_disabled", "forward", "generate", "save"}
        assert not shared & set(vars(cls)), cls
        assert {"gates", "gating", "gating_config", "config_file", "weights_file"} <= set(vars(cls))
        assert "super().__init__(peft_model, adapters)" in inspect.getsource(cls.__init__)
