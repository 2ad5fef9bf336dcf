"""Train a small LoRA adapter with the shared loop; run directly or under ``accelerate launch``.

python -m tests.training.ddp_worker BASE OUT            # one process
accelerate launch --cpu --num_processes 2 -m tests.training.ddp_worker BASE OUT
"""

from __future__ import annotations

import json
import sys


def main(base: str, out: str) -> None:
    from engine.training.config import LoraSettings, TrainSettings
    from engine.training.ddp import DataParallel
    from engine.training.examples import TrainingExample
    from engine.training.experts import train_adapter

    outs = ["def add(a, b):\n    return a + b", "for i in range(10):\n    print(i)", "x = [i * i for i in range(5)]"]
    exs = [TrainingExample("t2s", f"task {i}", outs[i % 3], problem_id=str(i)) for i in range(12)]
    res = train_adapter(
        base,
        exs,
        out,
        lora=LoraSettings(r=4, alpha=8, dropout=0.0, target_modules=("q_proj", "v_proj")),
        train=TrainSettings(max_steps=3, batch_size=2, grad_accum=3, lr=5e-3, max_length=64),
    )
    dp = DataParallel()
    print(json.dumps({"rank": dp.rank, "world": dp.world, "losses": res.losses}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
