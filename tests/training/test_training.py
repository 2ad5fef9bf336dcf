"""Experts train and resume; the hypernetwork trains with experts and base frozen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from engine.training.config import HyperSettings, LoraSettings, TrainSettings
from engine.training.examples import TrainingExample
from engine.training.experts import train_adapter, train_experts
from engine.training.hypernet import load_disenlora, train_hypernetwork

LORA = LoraSettings(r=4, alpha=8, dropout=0.1, target_modules=("q_proj", "v_proj"))


def _examples(n: int = 12) -> list[TrainingExample]:
    outs = ["def add(a, b):\n    return a + b", "for i in range(10):\n    print(i)"]
    return [TrainingExample("t2s", f"task {i % 2}", outs[i % 2], problem_id=str(i)) for i in range(n)]


def test_interrupted_training_resumes_at_the_same_step(tiny_base, tmp_path):
    settings = TrainSettings(epochs=2, batch_size=2, lr=5e-3, checkpoint_every=2, max_length=64)
    exs = _examples(12)  # 6 steps per epoch, 12 total

    straight = train_adapter(tiny_base, exs, tmp_path / "straight", lora=LORA, train=settings)
    assert straight.status == "done" and straight.step == 12

    events: list[dict] = []
    calls = {"n": 0}

    def stop_after_5() -> bool:
        calls["n"] += 1
        return calls["n"] > 5

    first = train_adapter(
        tiny_base,
        exs,
        tmp_path / "resumed",
        lora=LORA,
        train=settings,
        progress=events.append,
        should_stop=stop_after_5,
    )
    assert first.status == "cancelled" and first.step == 5
    assert not (tmp_path / "resumed" / "adapter_model.safetensors").exists()
    assert any(e["event"] == "cancelled" for e in events)
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [1, 2, 3, 4, 5]
    assert {"loss", "lr", "tokens_per_s", "eta_s", "total"} <= set(progress[0])

    events.clear()
    second = train_adapter(tiny_base, exs, tmp_path / "resumed", lora=LORA, train=settings, progress=events.append)
    assert events[0] == {"adapter": "adapter", "event": "resumed", "step": 5, "total": 12}
    assert second.status == "done" and second.step == straight.step == 12
    assert len(second.losses) == 12
    # same data order, optimiser state and RNG: the resumed run is the uninterrupted run
    np.testing.assert_allclose(second.losses, straight.losses, rtol=1e-4)
    a = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    b = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)


def test_experts_per_cluster_then_hypernetwork_trains_with_experts_frozen(tiny_base, tmp_path):
    exs = _examples(16)
    clusters = {
        "k": 2,
        "labels": [i % 2 for i in range(16)],
        "centroids": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        "encoder": "kw",
    }
    dirs = train_experts(
        tiny_base,
        exs,
        clusters,
        tmp_path / "experts",
        lora=LORA,
        train=TrainSettings(max_steps=3, batch_size=4, lr=5e-3, max_length=64),
    )
    assert [d.name for d in dirs] == ["expert_0", "expert_1"]
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM

    for d in dirs:
        assert (d / "adapter_config.json").is_file()
        assert json.loads((d / "training.json").read_text())["n_examples"] == 8
        # plain peft: the base model the adapter names, then PeftModel.from_pretrained
        named = PeftConfig.from_pretrained(str(d)).base_model_name_or_path
        assert named == str(Path(tiny_base).resolve())
        pm = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(named), str(d))
        assert any("lora_B" in n and p.abs().sum() > 0 for n, p in pm.named_parameters())

    class KeywordEncoder:  # input "task j" -> near centroid j
        name = "kw"

        def encode(self, texts):
            return np.array([[1.0, 0.1, 0.0] if t.endswith("0") else [0.1, 1.0, 0.0] for t in texts], np.float32)

    from engine.training import hypernet as hn

    seen: dict[str, torch.Tensor] = {}
    after: dict[str, torch.Tensor] = {}
    real_run_loop = hn.run_loop

    def spy_run_loop(**kw):  # the in-memory frozen parameters before and after training
        for n, p in kw["module"].peft_model.named_parameters():
            seen[n] = p.detach().clone()
        out = real_run_loop(**kw)
        for n, p in kw["module"].peft_model.named_parameters():
            after[n] = p.detach().clone()
        return out

    hn.run_loop = spy_run_loop
    try:
        res = train_hypernetwork(
            tiny_base,
            [str(d) for d in dirs],
            clusters,
            exs,
            tmp_path / "disen",
            hyper=HyperSettings(hidden=32),
            train=TrainSettings(epochs=6, batch_size=4, lr=3e-2, max_length=64, warmup_ratio=0.0),
            encoder=KeywordEncoder(),
        )
    finally:
        hn.run_loop = real_run_loop
    assert res.status == "done"
    first, last = np.mean(res.losses[:3]), np.mean(res.losses[-3:])
    assert last < first, res.losses

    assert seen and seen.keys() == after.keys()
    assert any("lora_A" in n for n in seen)
    for n in seen:
        assert torch.equal(seen[n], after[n]), n  # base and experts untouched by training

    model, tok, cfg = load_disenlora(tmp_path / "disen")
    assert cfg["encoder"] == "kw"
    # the hypernetwork was trained: its head is no longer the zero init, gates are input-aware
    assert model.hypernet.head.weight.abs().sum() > 0
    g = model.gates(torch.tensor(KeywordEncoder().encode(["task 0", "task 1"])))
    assert not torch.allclose(g[0], g[1])


def test_held_out_examples_never_train_and_their_loss_is_evaluated_each_epoch(tiny_base, tmp_path):
    from engine.training.loop import split_held_out

    tr, ev = split_held_out(12, 0.25, seed=0)
    assert len(ev) == 3 and sorted(tr + ev) == list(range(12)) and not set(tr) & set(ev)
    assert split_held_out(12, 0.0, seed=0) == (list(range(12)), [])
    events: list[dict] = []
    res = train_adapter(
        tiny_base,
        _examples(12),
        tmp_path / "sft",
        lora=LORA,
        name="sft",
        progress=events.append,
        train=TrainSettings(epochs=2, batch_size=3, lr=5e-3, max_length=64, eval_fraction=0.25),
    )
    assert res.status == "done" and res.total == 6  # 9 training examples, 3 per step, 2 epochs
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [3, 6] and all(e["adapter"] == "sft" and e["loss"] > 0 for e in evals)
