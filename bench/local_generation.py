"""Local generation: batching throughput, and the latency of staggered calls (continuous vs dynamic).

1. Throughput: 4 concurrent requests (batched by the default engine) vs 4 sequential ones.
   Same model, same prompts, same max_tokens, greedy. Target: concurrent tokens/s >= 1.8x sequential.
2. Staggered arrivals, as the search fires them (expansions, simulations, reflections): requests
   arrive at t = 0, 0.5, 1.0, 1.5 s with different max_tokens; mean latency (arrival to reply)
   with the DynamicBatcher (a late call waits for the running generate) vs the ContinuousBatcher
   (it joins the running batch). Each engine has its own copy of the model; rounds interleave
   the two to share the machine's noise; medians are reported, and the replies must be identical.
   Target: dynamic / continuous mean latency >= 1.3x.

Both measure the transformers engine (pinned: llama.cpp, the default where installed, runs one call at a
time per model; bench/local_engines.py compares the engines). Both go through the full litellm path (LLMClient -> litellm -> local provider -> batcher), with
the cache disabled by giving each request its own sample index and a fresh sink.

It never hangs: when generation is broken the local engine fails its calls (a dead generation
thread at once, a stalled one after ``BDC_LOCAL_STALL_S``), the bench prints both TARGET lines as
``error`` and exits 1; and a wall-clock limit (``BENCH_TIME_LIMIT_S``, default 1800 s) ends it the
same way whatever happens. The header names the versions measured (the locked ones: requirements.lock).

Usage: python bench/local_generation.py [model]   (default: smollm2-135m, else a tiny random Llama)
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.agents import CallContext, LLMClient, MemorySink, PolicySpec  # noqa: E402
from engine.agents.local.catalog import CATALOG, is_installed  # noqa: E402

N = 4
MAX_TOKENS = int(os.environ.get("BENCH_MAX_TOKENS", "64"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TIME_LIMIT_S = float(os.environ.get("BENCH_TIME_LIMIT_S", "1800"))
TARGETS = (("local_generation_concurrency_speedup", 1.8), ("local_continuous_latency", 1.3))
STAGGER = [(0.0, 128), (0.5, 32), (1.0, 96), (1.5, 48)]  # (arrival s, max_tokens) per request
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
    spec = PolicySpec("bench", f"local/{model}", max_tokens=MAX_TOKENS, extra={"local_engine": "transformers"})

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


async def staggered(name: str, round_: int) -> tuple[float, list[str]]:
    """Mean latency (s) of the STAGGER requests on engine ``local/<name>``, and their replies."""
    client = LLMClient(MemorySink())

    async def one(i: int, at: float, max_tokens: int) -> tuple[float, str]:
        await asyncio.sleep(at)
        spec = PolicySpec("bench", f"local/{name}", max_tokens=max_tokens)
        start = time.perf_counter()
        msgs = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
        reply = await client.complete(spec, msgs, ctx=CallContext(sample_index=round_ * 100 + i))
        return time.perf_counter() - start, reply.text

    done = await asyncio.gather(*[one(i, at, n) for i, (at, n) in enumerate(STAGGER)])
    return sum(t for t, _ in done) / len(done), [text for _, text in done]


async def compare_staggered(model: str) -> float:
    """Dynamic vs continuous on staggered arrivals; returns the median latency ratio."""
    from engine.agents.local.loader import load_model
    from engine.agents.local.provider import LocalEngine, set_engine

    engines = {}
    for mode in ("dynamic", "continuous"):
        m, tok = load_model(model)
        engines[mode] = LocalEngine(m, tok, batching=mode)
        set_engine(f"bench-{mode}", engines[mode])
        await staggered(f"bench-{mode}", 0)  # warm up
    print(
        f"staggered: arrivals/max_tokens {STAGGER}; engines: "
        + ", ".join(f"{k}={e.batching}" for k, e in engines.items())
    )
    lat: dict[str, list[float]] = {"dynamic": [], "continuous": []}
    same = True
    for r in range(1, ROUNDS + 1):
        order = ("dynamic", "continuous") if r % 2 else ("continuous", "dynamic")
        texts = {}
        for mode in order:
            t, texts[mode] = await staggered(f"bench-{mode}", r)
            lat[mode].append(t)
        same &= texts["dynamic"] == texts["continuous"]
        print(f"round {r}: mean latency dynamic {lat['dynamic'][-1]:.2f}s | continuous {lat['continuous'][-1]:.2f}s")
    dyn = sorted(lat["dynamic"])[len(lat["dynamic"]) // 2]
    con = sorted(lat["continuous"])[len(lat["continuous"]) // 2]
    print(f"median mean latency: dynamic {dyn:.2f}s, continuous {con:.2f}s; replies identical: {same}")
    for e in engines.values():
        e.close()
    return dyn / con if con > 0 else 0.0


def fail_targets(why: str) -> None:
    """Both TARGET lines as errors, the reason, exit 1 at once (threads still stuck in generation included)."""
    print(f"generation broken: {why}", flush=True)
    for name, goal in TARGETS:
        print(f"TARGET {name} measured=error goal={goal}x short", flush=True)
    os._exit(1)


def arm_time_limit(seconds: float) -> None:
    timer = threading.Timer(
        seconds, fail_targets, args=(f"the bench did not finish within {seconds:.0f} s (BENCH_TIME_LIMIT_S)",)
    )
    timer.daemon = True
    timer.start()


async def main() -> None:
    model, label = pick_model()
    from engine.agents.local.batcher import default_threads
    from engine.agents.local.provider import batching_mode

    versions = "  ".join(f"{p} {importlib.metadata.version(p)}" for p in ("torch", "transformers"))
    print(
        f"model: {label}  requests: {N}  max_tokens: {MAX_TOKENS}  generation threads: {default_threads()}"
        f"  default batching: {batching_mode()}  {versions}"
    )
    await run(model, True, 0)  # load + warm up
    seq_rates, con_rates = [], []
    for r in range(1, ROUNDS + 1):  # interleave to share the machine's noise
        t, n = await run(model, False, r)
        seq_rates.append(n / t)
        t2, n2 = await run(model, True, r + 50)
        con_rates.append(n2 / t2)
        print(
            f"round {r}: sequential {n} tok in {t:.2f}s ({n / t:.1f} tok/s) | "
            f"concurrent {n2} tok in {t2:.2f}s ({n2 / t2:.1f} tok/s)"
        )
    seq = sorted(seq_rates)[len(seq_rates) // 2]
    con = sorted(con_rates)[len(con_rates) // 2]
    ratio = con / seq
    print(f"median tokens/s: sequential {seq:.1f}, concurrent {con:.1f}")
    lat_ratio = await compare_staggered(model)
    print(
        f"TARGET local_generation_concurrency_speedup measured={ratio:.2f}x goal=1.8x {'ok' if ratio >= 1.8 else 'short'}"
    )
    print(
        f"TARGET local_continuous_latency measured={lat_ratio:.2f}x goal=1.3x {'ok' if lat_ratio >= 1.3 else 'short'}"
    )


if __name__ == "__main__":
    arm_time_limit(TIME_LIMIT_S)
    try:
        asyncio.run(main())
    except Exception as e:  # noqa: BLE001 - a failed local call: the figures cannot be measured
        fail_targets(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    sys.stdout.flush()
    os._exit(0)  # engines' daemon threads are not waited for
