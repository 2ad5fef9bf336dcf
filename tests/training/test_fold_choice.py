"""Generation of one input picks its fold by length, and every fold generates what the
stacked path generates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import ConfigError
from engine.training import composed as composed_model
from engine.training.hypernet import build_disenlora


@pytest.fixture()
def composed(tiny_base, tiny_experts):
    model, tok = build_disenlora(tiny_base, tiny_experts, np.eye(3, 8, dtype=np.float32) + 0.1, dtype=torch.float32)
    torch.manual_seed(0)
    for p in model.hypernet.head.parameters():
        torch.nn.init.normal_(p, std=0.5)
    return model, tok


def _spy(model, monkeypatch):
    seen = []
    real = model.folded

    def folded(gate, *, into_weights=True):
        seen.append("weights" if into_weights else "lowrank")
        return real(gate, into_weights=into_weights)

    monkeypatch.setattr(model, "folded", folded)
    return seen


def test_auto_fold_depends_on_length_and_all_folds_agree(composed, monkeypatch):
    model, tok = composed
    ids = tok(["def f(x):"], return_tensors="pt")["input_ids"]
    emb = torch.randn(1, model.centroids.shape[1])
    seen = _spy(model, monkeypatch)
    kw = dict(do_sample=False, pad_token_id=tok.pad_token_id)
    monkeypatch.setattr(composed_model, "FOLD_WEIGHTS_MIN_TOKENS", 6)
    ref = model.generate(ids, emb, fold="none", max_new_tokens=6, min_new_tokens=6, **kw)
    assert seen == []
    outs = {
        f: model.generate(ids, emb, fold=f, max_new_tokens=6, min_new_tokens=6, **kw)
        for f in ("weights", "lowrank", "auto")
    }
    assert seen == ["weights", "lowrank", "weights"]
    for f, out in outs.items():
        assert torch.equal(out, ref), f
    model.generate(ids, emb, max_new_tokens=5, **kw)
    assert seen[-1] == "lowrank"
    with pytest.raises(ConfigError):
        model.generate(ids, emb, fold="sideways", max_new_tokens=2, **kw)
