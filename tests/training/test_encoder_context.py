"""The clustering encoder reads the whole <X, y>: the base model by default, keeping y."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.training.embedding import BASE_CONTEXT, base_model_encoder, clustering_encoder, context_length


def test_base_encoder_keeps_the_end_of_a_long_pair(tiny_base):
    enc = base_model_encoder(tiny_base, max_length=32)
    assert enc.keep_end and enc.name == "base"
    long_x = "statement " * 200  # far beyond 32 tokens
    a, b = enc.encode([long_x + "\ndef f(): return 1", long_x + "\nwhile True: pass  # other code"])
    assert not np.allclose(a, b)  # y survives truncation: different code, different embeddings
    right = base_model_encoder(tiny_base, max_length=32)
    right.keep_end = False
    a2, b2 = right.encode([long_x + "\ndef f(): return 1", long_x + "\nwhile True: pass  # other code"])
    assert np.allclose(a2, b2)  # what MiniLM-style right truncation does: y cut away
    assert enc.tokenizer.truncation_side == "right"  # a shared tokenizer is left as it was


def test_default_context_is_the_models_up_to_the_cap(tiny_base):
    enc = base_model_encoder(tiny_base)
    assert enc.max_length == context_length(enc.model, enc.tokenizer) <= BASE_CONTEXT
    assert enc.max_length >= 512 or enc.max_length == enc.model.config.max_position_embeddings


def test_clustering_encoder_choice(tiny_base, monkeypatch, tmp_path):
    monkeypatch.setenv("BDC_HOME", str(tmp_path / "home"))
    enc, note = clustering_encoder("auto", tiny_base)
    assert enc.name == "base" and "base model" in note
    enc, note = clustering_encoder("auto", None)  # nothing installed here: the fast option, said so
    assert enc.name == "minilm" and "no base model is available" in note
    with pytest.raises(ConfigError, match="not installed"):
        clustering_encoder("base", None)
    with pytest.raises(ConfigError, match="unknown encoder"):
        clustering_encoder("bert", None)
