"""Generation speed of the DisenLoRA composed solver (K experts, gates from the
hypernetwork, batch of one -> folded fast path) against the base model with one LoRA
merged into its weights. Both greedy, same prompt, same number of new tokens; the composed
side includes computing the gates and folding/unfolding them per generation.
Target: composed tokens/s >= 0.9x merged.

    python bench/composed_inference.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
GOAL = 0.9
K = 3
NEW_TOKENS = 48
ROUNDS = 3


def main() -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    from _models import bench_model
    from engine.training.base import load_base_model, load_tokenizer
    from engine.training.hypernet import build_disenlora

    path, desc = bench_model()
    torch.set_num_threads(os.cpu_count() or 1)
    tmp = Path(tempfile.mkdtemp(prefix="bdc-bench-experts-"))
    experts = []
    for i in range(K):
        torch.manual_seed(i)
        pm = get_peft_model(load_base_model(path), LoraConfig(
            r=8, lora_alpha=16, init_lora_weights=False,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
        pm.save_pretrained(str(tmp / f"e{i}"))
        experts.append(str(tmp / f"e{i}"))
    tok = load_tokenizer(path)
    prompt = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    gen = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=tok.pad_token_id)

    merged = PeftModel.from_pretrained(load_base_model(path), experts[0]).merge_and_unload().eval()
    torch.manual_seed(0)
    centroids = torch.nn.functional.normalize(torch.randn(K, 384), dim=-1)
    composed, _ = build_disenlora(path, experts, centroids)
    composed.eval()
    for p in composed.hypernet.head.parameters():  # non-trivial gates
        torch.nn.init.normal_(p, std=0.5)
    emb = torch.nn.functional.normalize(torch.randn(1, 384), dim=-1)

    def run_merged() -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            out = merged.generate(input_ids=ids, **gen)
        return (out.shape[1] - ids.shape[1]) / (time.perf_counter() - t)

    def run_composed() -> float:
        t = time.perf_counter()
        out = composed.generate(ids, emb, **gen)
        return (out.shape[1] - ids.shape[1]) / (time.perf_counter() - t)

    run_merged(), run_composed()  # warm-up
    m, c = [], []
    for _ in range(ROUNDS):  # interleaved so machine noise hits both sides alike
        m.append(run_merged())
        c.append(run_composed())
    tm, tc = statistics.median(m), statistics.median(c)
    print(f"model: {desc}; K={K} experts r=8 on all linear layers; {NEW_TOKENS} new tokens, median of {ROUNDS}")
    print(f"  base + merged LoRA : {tm:7.1f} tok/s")
    print(f"  DisenLoRA composed : {tc:7.1f} tok/s (folded, batch of one)")
    ratio = tc / tm
    print(f"TARGET composed_inference_tokens_per_s measured={ratio:.3f} goal>={GOAL} {'ok' if ratio >= GOAL else 'short'}")


if __name__ == "__main__":
    main()
