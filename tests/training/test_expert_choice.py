"""``bdc train experts --expert K``: only the chosen experts are trained (one GPU per expert by hand)."""

from __future__ import annotations

import json

import pytest

from engine.errors import ConfigError
from engine.training.clustering import save_result
from engine.training.examples import TrainingExample

MAX_STEPS = ["--max-steps", "2", "--batch-size", "4", "--max-length", "64", "--r", "4"]


def write_build(root, n: int = 8):
    """A training JSONL and a 2-cluster clusters.json in OUT (what `bdc export` / `bdc cluster` leave)."""
    outs = ["def add(a, b):\n    return a + b", "for i in range(10):\n    print(i)"]
    data = root / "train.jsonl"
    data.write_text(
        "".join(
            json.dumps(TrainingExample("t2s", f"task {i % 2}", outs[i % 2], problem_id=str(i)).to_dict()) + "\n"
            for i in range(n)
        )
    )
    out = root / "out"
    save_result(
        {"k": 2, "labels": [i % 2 for i in range(n)], "centroids": [[1.0, 0.0], [0.0, 1.0]], "encoder": "kw"}, out
    )
    return data, out


def test_only_the_chosen_expert_is_trained(tiny_base, tmp_path):
    from engine.training.config import LoraSettings, TrainSettings
    from engine.training.examples import load_examples
    from engine.training.experts import train_experts

    data, out = write_build(tmp_path)
    clusters = json.loads((out / "clusters.json").read_text())
    dirs = train_experts(
        tiny_base,
        load_examples(data),
        clusters,
        out / "experts",
        lora=LoraSettings(r=4),
        train=TrainSettings(max_steps=2, batch_size=4, max_length=64),
        only=[1],
    )
    assert [d.name for d in dirs] == ["expert_1"]
    assert (out / "experts" / "expert_1" / "adapter_config.json").is_file()
    assert not (out / "experts" / "expert_0").exists()
    with pytest.raises(ConfigError, match=r"--expert 2: the clustering has 2 experts \(0..1\)"):
        train_experts(tiny_base, load_examples(data), clusters, out / "experts", only=[2])


def test_cli_expert_option(tiny_base, tmp_path, bdc_home):
    from engine import logs
    from engine.cli import main

    data, out = write_build(tmp_path)
    try:
        main(
            [
                "--db",
                str(tmp_path / "bdc.db"),
                "train",
                "experts",
                str(data),
                "--out",
                str(out),
                "--base",
                tiny_base,
                "--expert",
                "0",
                *MAX_STEPS,
            ]
        )
    except SystemExit as e:
        assert not e.code
    finally:
        logs.teardown()
    assert (out / "experts" / "expert_0" / "adapter_config.json").is_file()
    assert not (out / "experts" / "expert_1").exists()
