"""Portable artefacts: safetensors + JSON for DisenLoRA/Twin, plain-peft loading of
experts and merges on the base model their configs name, old pickles still load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import ConfigError
from engine.training.base import model_id, resolve_base
from engine.training.hypernet import build_disenlora, load_disenlora

CENTROIDS = np.eye(3, 8, dtype=np.float32) + 0.1


@pytest.fixture()
def disenlora_dir(tiny_base, tiny_experts, tmp_path):
    """A saved DisenLoRA folder next to copies of its experts, with non-trivial gates."""
    from engine.training.artifacts import relative_dirs

    art = tmp_path / "art"
    experts = []
    for d in tiny_experts:
        experts.append(art / "experts" / Path(d).name)
        shutil.copytree(d, experts[-1])
    model, _ = build_disenlora(tiny_base, experts, CENTROIDS, dtype=torch.float32)
    torch.manual_seed(0)
    for p in model.hypernet.head.parameters():
        torch.nn.init.normal_(p, std=0.5)
    out = art / "disenlora"
    model.save(
        out,
        {
            "base": model_id(tiny_base),
            "experts": relative_dirs(experts, out),
            "encoder": "base",
            "trained_problem_ids": ["HumanEval/0", "HumanEval/7"],
        },
    )
    return model, out


def _logits(model, seed: int = 0):
    torch.manual_seed(seed)
    emb, ids = torch.randn(2, 8), torch.randint(3, 100, (2, 6))
    with torch.no_grad():
        return model(ids, emb).logits


def test_disenlora_is_safetensors_plus_open_json_and_loads_back(disenlora_dir, tiny_base):
    from safetensors import safe_open

    model, out = disenlora_dir
    assert sorted(p.name for p in out.iterdir()) == ["disenlora.json", "hypernet.safetensors"]
    cfg = json.loads((out / "disenlora.json").read_text())
    assert cfg["format"] == "bdc-disenlora" and cfg["format_version"] == 1
    assert cfg["base"] == str(Path(tiny_base).resolve()) and cfg["experts"][0] == "../experts/expert_0"
    assert cfg["trained_problem_ids"] == ["HumanEval/0", "HumanEval/7"]  # extra keys are kept
    with safe_open(str(out / "hypernet.safetensors"), "pt") as f:  # readable without bdc
        assert set(f.keys()) == set(model.hypernet.state_dict())
        assert f.metadata()["format"] == "bdc-disenlora"
    # the whole folder moves: experts are found relative to it, the base by its name
    moved = out.parent.parent / "moved"
    shutil.move(str(out.parent), str(moved))
    loaded, _, lcfg = load_disenlora(moved / "disenlora", dtype=torch.float32)
    assert lcfg["trained_problem_ids"] == ["HumanEval/0", "HumanEval/7"]
    torch.testing.assert_close(_logits(loaded), _logits(model), rtol=1e-5, atol=1e-6)


def test_an_old_pickled_artifact_still_loads(disenlora_dir, tiny_experts):
    """Older bdc wrote hypernet.pt (a plain state dict) and absolute expert paths: read
    with torch.load(weights_only=True), so no pickled code can run."""
    model, out = disenlora_dir
    cfg = json.loads((out / "disenlora.json").read_text())
    old = {k: cfg[k] for k in ("base", "encoder", "centroids", "hyper", "layers")}
    old["experts"] = [str(Path(d).resolve()) for d in tiny_experts]
    (out / "disenlora.json").write_text(json.dumps(old))
    torch.save(model.hypernet.state_dict(), out / "hypernet.pt")
    (out / "hypernet.safetensors").unlink()
    loaded, _, _ = load_disenlora(out, dtype=torch.float32)
    torch.testing.assert_close(_logits(loaded), _logits(model), rtol=1e-5, atol=1e-6)
    # saving again writes the new format and drops the pickle
    loaded.save(out, {"base": old["base"], "experts": old["experts"], "encoder": "base"})
    assert (out / "hypernet.safetensors").is_file() and not (out / "hypernet.pt").exists()


def test_bad_artifacts_get_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="not a DisenLoRA folder"):
        load_disenlora(tmp_path)
    (tmp_path / "disenlora.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ConfigError, match="not a readable DisenLoRA config"):
        load_disenlora(tmp_path)
    (tmp_path / "disenlora.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ConfigError, match="newer bdc"):
        load_disenlora(tmp_path)


def test_merges_load_with_plain_peft_on_the_named_base(tiny_base, tiny_experts, tmp_path):
    """What a peft user does: read the adapter's base name, load that, PeftModel.from_pretrained."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM

    from engine.evaluation.solvers import HFSolver
    from engine.training.merge import merge_adapters

    out = merge_adapters(tiny_base, tiny_experts, "ties", tmp_path / "merges" / "ties")
    named = PeftConfig.from_pretrained(str(out)).base_model_name_or_path
    assert named == model_id(tiny_base)
    plain = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(named, dtype=torch.float32), str(out)).eval()
    ours = HFSolver(tiny_base, out).model
    ids = torch.randint(3, 100, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(plain(ids).logits, ours(ids).logits, rtol=1e-4, atol=1e-5)
    meta = json.loads((out / "merge.json").read_text())
    assert meta["base"] == named and not any(Path(e).is_absolute() for e in meta["experts"])


def test_installed_and_hub_cache_folders_are_named_by_hub_id(tmp_path, monkeypatch):
    monkeypatch.setenv("BDC_CACHE", str(tmp_path / "cache"))
    installed = tmp_path / "cache" / "models" / "qwen2.5-coder-0.5b"
    installed.mkdir(parents=True)
    (installed / "config.json").write_text("{}")
    (installed / "bdc-model.json").write_text(json.dumps({"name": "qwen2.5-coder-0.5b"}))
    assert model_id(str(installed)) == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert model_id("qwen") == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    # and back: an artefact naming the hub id loads the installed conversion
    assert resolve_base("Qwen/Qwen2.5-Coder-0.5B-Instruct") == str(installed)
    snap = tmp_path / "hf" / "models--HuggingFaceTB--SmolLM2-135M" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    assert model_id(str(snap)) == "HuggingFaceTB/SmolLM2-135M"
    assert model_id("org/some-model") == "org/some-model"
