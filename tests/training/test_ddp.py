"""``accelerate launch`` / torchrun data parallelism of the shared training loop: 2 processes make the
update 1 process makes (same losses, same adapter), and only the main process writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], tmp_path: Path) -> list[dict]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BDC_DTYPE": "fp32",
        "OMP_NUM_THREADS": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "ACCELERATE_CONFIG_FILE": str(tmp_path / "none.yaml"),
    }
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]


@pytest.mark.timeout(600)
def test_two_processes_train_the_adapter_one_process_trains(tiny_base, tmp_path):
    import torch
    from safetensors.torch import load_file

    # `accelerate launch --multi_gpu` starts its processes through torch's elastic launcher;
    # on CPUs accelerate starts only one, so the test calls that launcher (torchrun) itself
    one = _run([sys.executable, "-m", "tests.training.ddp_worker", tiny_base, str(tmp_path / "one")], tmp_path)
    two = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--master-addr",
            "127.0.0.1",
            "--master-port",
            "29617",
            "-m",
            "tests.training.ddp_worker",
            tiny_base,
            str(tmp_path / "two"),
        ],
        tmp_path,
    )
    assert sorted((r["rank"], r["world"]) for r in two) == [(0, 2), (1, 2)]
    for r in two:
        assert r["losses"] == pytest.approx(one[0]["losses"], rel=1e-4)
    a = load_file(tmp_path / "one" / "adapter_model.safetensors")
    b = load_file(tmp_path / "two" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)
