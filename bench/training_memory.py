"""Peak memory of one 4-bit (QLoRA, nf4) LoRA training step against a bf16 LoRA step on
the same model. Each variant runs in its own subprocess so peaks do not mix; the figure is
the peak RSS during load + step minus the RSS after imports (what the model and the step
add). Target: 4-bit / bf16 <= 0.45.

    python bench/training_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
GOAL = 0.45


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(mode: str, model_path: str) -> None:
    import torch
    from peft import get_peft_model

    from engine.training.base import load_base_model
    from engine.training.config import LoraSettings

    torch.manual_seed(0)
    base_rss = _rss()
    peak = [base_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.002)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    model = load_base_model(model_path, quant="4bit" if mode == "4bit" else "none",
                            dtype=torch.bfloat16, for_training=True)
    if mode != "4bit":
        for p in model.parameters():
            p.requires_grad_(False)
    pm = get_peft_model(model, LoraSettings(r=8, alpha=16, dropout=0.0).to_peft())
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(3, min(model.config.vocab_size, 500), (2, 256))
    pm.train()
    t = time.perf_counter()
    loss = pm(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    step_s = time.perf_counter() - t
    peak[0] = max(peak[0], _rss())
    done.set()
    th.join()
    print(json.dumps({"mode": mode, "peak_bytes": peak[0] - base_rss, "step_s": step_s, "loss": float(loss)}))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    from _models import bench_model

    path, desc = bench_model()
    out = {}
    for mode in ("bf16", "4bit"):
        r = subprocess.run([sys.executable, __file__, "--child", mode, path], capture_output=True, text=True,
                           env={**os.environ, "HF_HUB_OFFLINE": "1"})
        line = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if r.returncode != 0 or not line:
            print(r.stderr[-2000:])
            print(f"TARGET training_memory_4bit_vs_bf16 measured=error goal<={GOAL} short")
            return
        out[mode] = json.loads(line[-1])
    print(f"model: {desc} ({path})")
    for mode, d in out.items():
        print(f"  {mode:5s} peak +{d['peak_bytes'] / 2**20:8.1f} MiB   step {d['step_s']:.2f} s   loss {d['loss']:.3f}")
    ratio = out["4bit"]["peak_bytes"] / out["bf16"]["peak_bytes"]
    print(f"TARGET training_memory_4bit_vs_bf16 measured={ratio:.3f} goal<={GOAL} {'ok' if ratio <= GOAL else 'short'}")


if __name__ == "__main__":
    main()
