"""Which CPU engine for the local models (issue 16): llama.cpp vs transformers, and transformers' own options.

Workload: the solution prompt bdc sends for HumanEval/0 and HumanEval/1 (``engine.agents.prompts``), greedy,
``--tokens`` new tokens (the loop guard and end-of-sequence may end a reply earlier: tokens/s counts what
was generated), one call at a time, on the chosen model (default Qwen2.5-Coder-0.5B, the slow one of
the pair). Each variant is timed from the call to its last token (prefill included); rounds interleave
the variants so they share the machine's noise; medians are reported.

Variants (each only where it loads):
- ``transformers``: the default today: float32 weights, ``default_threads()`` threads, DynamicBatcher.
- ``tf-bf16``: the same weights in bfloat16.
- ``tf-int8``: ``torch.ao.quantization.quantize_dynamic`` (int8 weights of every Linear, float activations).
- ``tf-static``: ``generate(cache_implementation="static")`` (a fixed-size KV cache, what torch.compile needs).
- ``tf-compile``: static cache and ``torch.compile`` of the forward (``--compile``; compiling takes minutes).
- ``llama``: llama.cpp on the GGUF (``bdc[llama]``), same thread count.

Then, for llama.cpp: prefix reuse (a second call about the same problem after a call about it, vs after a
call about another problem: the prefill it saves), and thread placement of the pair (both models
generating at once with 1 thread each vs 2 threads each).

    python bench/local_engines.py [--model qwen2.5-coder-0.5b] [--tokens 96] [--rounds 2] [--compile]

Ends with ``TARGET local_engine_speedup`` (llama.cpp / transformers tokens/s, goal >= 3x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from engine.agents import prompts  # noqa: E402
from engine.agents.local.batcher import default_threads  # noqa: E402
from engine.agents.local.catalog import installed_gguf  # noqa: E402
from engine.agents.local.engines import llama_import_error  # noqa: E402
from engine.agents.local.provider import LocalEngine  # noqa: E402
from engine.problems.registry import load_dataset  # noqa: E402

Messages = list[dict]


def workload() -> list[Messages]:
    problems = load_dataset("humaneval")[:2]
    return [prompts.write_solution(p.prompt_view(), []) for p in problems]


def transformers_variant(name: str, model_name: str, compile_: bool = False) -> tuple[LocalEngine, dict]:
    import torch

    from engine.agents.local.loader import load_model

    mode = {"tf-bf16": "bf16", "tf-int8": "int8"}.get(name, "fp32")
    model, tok = load_model(model_name, mode=mode)
    gen_kw: dict[str, Any] = {}
    if name in ("tf-static", "tf-compile"):
        gen_kw["cache_implementation"] = "static"
        if compile_:
            model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
    return LocalEngine(model, tok, batching="dynamic"), gen_kw


def timed_call(engine: LocalEngine, msgs: Messages, tokens: int, gen_kw: dict) -> tuple[float, int, str]:
    """(seconds, generated tokens, text) of one greedy call."""
    if gen_kw:  # generate() options of a transformers variant: passed by wrapping the model's generate
        model = engine.model
        plain = model.generate
        model.generate = lambda *a, **k: plain(*a, **{**k, **gen_kw})
    t = time.perf_counter()
    res = engine.request(msgs, max_tokens=tokens, temperature=0.0).result(timeout=900)
    took = time.perf_counter() - t
    if gen_kw:
        engine.model.generate = plain
    return took, len(res.token_ids), res.text


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def compare_engines(args: argparse.Namespace, work: list[Messages]) -> dict[str, float]:
    names = ["transformers", "tf-bf16", "tf-int8", "tf-static"] + (["tf-compile"] if args.compile else [])
    variants: dict[str, tuple[LocalEngine, dict]] = {}
    for n in names:
        try:
            t = time.perf_counter()
            variants[n] = transformers_variant(n, args.model, compile_=n == "tf-compile")
            print(f"  {n}: loaded in {time.perf_counter() - t:.1f}s")
        except Exception as e:  # noqa: BLE001 - a variant this torch cannot build is reported, not fatal
            print(f"  {n}: unavailable ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
    gguf = installed_gguf(args.model)
    if llama_import_error() is None and gguf is not None:
        variants["llama"] = (LocalEngine.from_gguf(str(gguf)), {})
    else:
        print(f"  llama: unavailable ({llama_import_error() or 'no GGUF kept: bdc models install ' + args.model})")
    rates: dict[str, list[float]] = {n: [] for n in variants}
    texts: dict[str, str] = {}
    for n, (eng, kw) in variants.items():  # warm-up (first call pays one-time costs: compile, allocations)
        t, k, _ = timed_call(eng, work[0], 8, kw)
        print(f"  warm-up {n}: {t:.1f}s")
    for r in range(args.rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for n in order:
            eng, kw = variants[n]
            secs = toks = 0.0
            for msgs in work:
                t, k, text = timed_call(eng, msgs, args.tokens, kw)
                secs += t
                toks += k
                texts.setdefault(n, text)
            rates[n].append(toks / secs)
            print(f"round {r + 1} {n:13s} {toks:4.0f} tok in {secs:6.1f}s = {toks / secs:5.2f} tok/s")
    for eng, _ in variants.values():
        eng.close()
    base = texts.get("transformers", "")
    print("\nmedian tokens/s (prefill included), first reply same as the transformers default?")
    for n in variants:
        print(
            f"  {n:13s} {median(rates[n]):6.2f} tok/s  x{median(rates[n]) / median(rates['transformers']):.2f}"
            f"  same reply: {texts.get(n) == base}"
        )
    return {n: median(v) for n, v in rates.items()}


def prefix_reuse(args: argparse.Namespace, work: list[Messages]) -> None:
    """Second call about a problem right after a call about it (KV prefix in place) vs after another problem."""
    gguf = installed_gguf(args.model)
    if llama_import_error() is not None or gguf is None:
        return
    eng = LocalEngine.from_gguf(str(gguf))
    b = eng.batcher
    thought = [prompts.propose_thoughts(load_dataset("humaneval")[i].prompt_view(), [], 3) for i in range(2)]
    warm: list[float] = []
    cold: list[float] = []
    for _ in range(args.rounds):
        eng.request(work[0], max_tokens=1).result(timeout=600)  # problem 0 in the cache
        t = time.perf_counter()
        eng.request(thought[0], max_tokens=1).result(timeout=600)  # shares problem 0's prefix
        warm.append(time.perf_counter() - t)
        eng.request(work[1], max_tokens=1).result(timeout=600)  # problem 1 in the cache
        t = time.perf_counter()
        eng.request(thought[0], max_tokens=1).result(timeout=600)  # shares only the system prompt
        cold.append(time.perf_counter() - t)
    shared = b.cached_prefix(eng.encode(thought[0]))
    print(
        f"\nprefix reuse (llama.cpp, {args.model}): thought prompt {len(eng.encode(thought[0]))} tokens; "
        f"after a call about the same problem {median(warm):.2f}s to the first token, after another problem "
        f"{median(cold):.2f}s (x{median(cold) / median(warm):.2f}); {shared} tokens in place now; "
        f"{b.prefix_tokens_reused} of {b.prompt_tokens_seen} prompt tokens reused over the run"
    )
    eng.close()


def thread_placement(args: argparse.Namespace, work: list[Messages]) -> None:
    """The pair generating at once: 1 thread per model (default on 2 cores) vs every core per model."""
    ggufs = [installed_gguf(n) for n in ("qwen2.5-coder-0.5b", "smollm2-135m")]
    if llama_import_error() is not None or None in ggufs:
        return
    cores = os.cpu_count() or 2
    for threads in sorted({default_threads(), cores}):
        engines = [LocalEngine.from_gguf(str(g), threads=threads) for g in ggufs]
        for e in engines:
            e.request(work[0], max_tokens=4).result(timeout=600)
        totals: list[float] = []
        for _ in range(args.rounds):
            counts = [0, 0]

            def run(i: int, e: LocalEngine, counts: list[int] = counts) -> None:
                for msgs in work:
                    counts[i] += len(e.request(msgs, max_tokens=args.tokens).result(timeout=900).token_ids)

            t = time.perf_counter()
            ths = [threading.Thread(target=run, args=(i, e)) for i, e in enumerate(engines)]
            for th in ths:
                th.start()
            for th in ths:
                th.join()
            totals.append(sum(counts) / (time.perf_counter() - t))
        print(f"pair at once, {threads} thread(s) per model: {median(totals):.2f} tok/s together")
        for e in engines:
            e.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--only", default="", help="engines | prefix | threads (default: all)")
    args = ap.parse_args()
    import torch

    print(
        f"model {args.model}, {args.tokens} new tokens, greedy, {default_threads()} thread(s) per model, "
        f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    work = workload()
    steps: dict[str, Callable[[], Any]] = {
        "engines": lambda: compare_engines(args, work),
        "prefix": lambda: prefix_reuse(args, work),
        "threads": lambda: thread_placement(args, work),
    }
    results = {k: fn() for k, fn in steps.items() if not args.only or k == args.only}
    rates = results.get("engines") or {}
    if "llama" in rates and "transformers" in rates:
        ratio = rates["llama"] / rates["transformers"]
        print(f"TARGET local_engine_speedup measured={ratio:.2f}x goal=3.00x {'ok' if ratio >= 3 else 'short'}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # engines' daemon threads are not waited for
