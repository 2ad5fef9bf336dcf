"""Local generation throughput: 4 concurrent requests (dynamically batched) vs 4 sequential ones.

Same model, same prompts, same max_tokens, greedy. Both sides go through the full litellm path
(LLMClient -> litellm -> local provider -> DynamicBatcher), with the cache disabled by giving
each request its own sample index and a fresh sink. Tokens/s counts generated tokens.

Usage: python bench/local_generation.py [model]   (default: smollm2-135m, else a tiny random Llama)
Target: concurrent tokens/s >= 1.8x sequential tokens/s.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.agents import CallContext, LLMClient, MemorySink, PolicySpec  # noqa: E402
from engine.agents.local.catalog import CATALOG, is_installed  # noqa: E402

N = 4
MAX_TOKENS = int(os.environ.get("BENCH_MAX_TOKENS", "64"))
PROMPTS = [
    "Write a Python function that returns the n-th Fibonacci number.",
    "Write a Python function that checks whether a string is a palindrome.",
    "Write a Python function that returns the sum of the even numbers in a list.",
    "Write a Python function that counts the vowels in a string.",
]


def pick_model() -> tuple[str, str]:
    if len(sys.argv) > 1:
        return sys.argv[1], sys.argv[1]
    for name in ("smollm2-135m", "qwen2.5-coder-0.5b"):
        if is_installed(name):
            return name, name
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "agents"))
    from conftest import make_tiny_llama  # type: ignore

    folder = make_tiny_llama(tempfile.mkdtemp(prefix="bdc-bench-"))
    print(f"(no catalog model installed; using a tiny random Llama. Run `bdc models install` for {', '.join(CATALOG)})")
    return folder, "tiny-random-llama"


async def run(model: str, concurrent: bool, round_: int) -> tuple[float, int]:
    sink = MemorySink()
    client = LLMClient(sink)
    spec = PolicySpec("bench", f"local/{model}", max_tokens=MAX_TOKENS)

    async def one(i: int):
        msgs = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
        return await client.complete(spec, msgs, ctx=CallContext(sample_index=round_ * 100 + i))

    start = time.perf_counter()
    if concurrent:
        replies = await asyncio.gather(*[one(i) for i in range(N)])
    else:
        replies = [await one(i) for i in range(N)]
    elapsed = time.perf_counter() - start
    return elapsed, sum(r.tokens_out for r in replies)


async def main() -> None:
    model, label = pick_model()
    from engine.agents.local.batcher import default_threads

    print(f"model: {label}  requests: {N}  max_tokens: {MAX_TOKENS}  generation threads: {default_threads()}")
    await run(model, True, 0)  # load + warm up
    seq_rates, con_rates = [], []
    for r in range(1, 4):  # interleave to share the machine's noise
        t, n = await run(model, False, r)
        seq_rates.append(n / t)
        t2, n2 = await run(model, True, r + 50)
        con_rates.append(n2 / t2)
        print(f"round {r}: sequential {n} tok in {t:.2f}s ({n / t:.1f} tok/s) | "
              f"concurrent {n2} tok in {t2:.2f}s ({n2 / t2:.1f} tok/s)")
    seq = sorted(seq_rates)[len(seq_rates) // 2]
    con = sorted(con_rates)[len(con_rates) // 2]
    ratio = con / seq
    print(f"median tokens/s: sequential {seq:.1f}, concurrent {con:.1f}")
    print(f"TARGET local_generation_concurrency_speedup measured={ratio:.2f}x goal=1.8x {'ok' if ratio >= 1.8 else 'short'}")


if __name__ == "__main__":
    asyncio.run(main())
