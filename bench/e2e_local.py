"""Benchmark (issue 16): a real MC-Tree-Of-Agents search with the local pair, the old path against the new
default, side by side in one process, median of rounds.

- **current**: the path before issue 16: transformers engine (default batching), every call at the old
  768-token cap, no stop sequences.
- **new**: the default now: per-kind budgets and stops, on the default local engine (llama.cpp where the
  ``bdc[llama]`` extra is installed, else transformers: the header says which).

Workload: the first N HumanEval problems (default 2), 2 rollouts, greedy (temperature 0), the installed
local pair (Qwen2.5-Coder-0.5B + SmolLM2-135M; SmolLM2 alone when Qwen is not installed: the report
says which). Each arm runs through ``create_search_run`` / ``execute_run`` on a store of its own, the
engines loaded beforehand so neither pays the load. An arm still running at ``--arm-cap-s`` is stopped:
calls per minute stay exact over its window, pass rates cover the problems it finished (else the best
public pass rate of the solutions it had tested). Rounds alternate which arm goes first.

Figures: completed LLM calls per minute (median of the per-round ratios, goal >= 3x), pass rates (goal:
no worse), and time from launch to the first call in flight in the store (``call_progress``, goal < 5 s).

    python bench/e2e_local.py [--problems 2] [--rollouts 2] [--rounds 2] [--arm-cap-s 300]

Measured 2026-12-02 (Qwen2.5-Coder-0.5B + SmolLM2-135M, HumanEval/0-1, 2 rollouts, 300 s cap, 2 cores
shared with other jobs, load average 2.3 - 3.5): current 2.00 / 2.40 calls/min (capped, HumanEval/0
finished) vs new 8.98 / 9.98 calls/min (both problems finished in 134 / 120 s): per-round ratios 4.49,
4.16, median 4.33x. Private pass rate on the problems both arms finished 1.00 vs 1.00; best public
pass rate of tested solutions 0.50 in both (HumanEval/1 unsolved by either). First call in flight in the
store 0.3 - 0.5 s after launch. An earlier run (load 3.1 - 6.1): 3.63x and 4.19x, median 3.91x.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from dataclasses import replace  # noqa: E402

from engine.agents.local.catalog import CATALOG  # noqa: E402
from engine.agents.local.engines import SPEC_KEY, TRANSFORMERS, engine_for  # noqa: E402
from engine.agents.local.provider import get_engine  # noqa: E402
from engine.agents.preflight import problem_with  # noqa: E402
from engine.agents.types import PolicySpec  # noqa: E402
from engine.search.config import CALL_KINDS, RunConfig, SearchConfig  # noqa: E402
from engine.search.runner import create_search_run, execute_run  # noqa: E402
from engine.store import Store  # noqa: E402
from engine.store.call_progress import calls_in_flight  # noqa: E402

OLD_CAP = 768


def installed_agents() -> list[PolicySpec]:
    """The local pair as far as it is installed (SmolLM2 at least)."""
    specs = [PolicySpec(name.split("-")[0], f"local/{name}", temperature=0.0, max_tokens=OLD_CAP) for name in CATALOG]
    usable = [s for s in specs if problem_with(s) is None]
    if not usable:
        raise SystemExit("no local model installed: run `bdc models install smollm2-135m`")
    return usable


def on_engine(agents: list[PolicySpec], engine: str | None) -> list[PolicySpec]:
    """``agents`` pinned to ``engine`` (None: the default each model resolves to), as a run config records it."""
    out = []
    for a in agents:
        source = a.model.split("/", 1)[1]
        out.append(replace(a, extra={**a.extra, SPEC_KEY: engine or engine_for(source)}))
    return out


def current_path(base: SearchConfig) -> SearchConfig:
    """The path before budgets: every kind at the old cap, no stop sequences."""
    kw: dict[str, Any] = {f"{k}_tokens": OLD_CAP for k in CALL_KINDS} | {f"{k}_stop": [] for k in CALL_KINDS}
    return SearchConfig(**(base.to_dict() | kw))


async def run_arm(
    label: str, agents: list[PolicySpec], search: SearchConfig, problems: int, cap_s: float, folder: Path
) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    store = await Store.open(folder / f"{label}.db")
    try:
        cfg = RunConfig(
            dataset="humaneval",
            strategy="mcts",
            agents=[a.to_dict() for a in agents],
            subset={"limit": problems},
            search=search,
            llm_concurrency=8,
            problem_concurrency=problems,
        )
        run_id = await create_search_run(store, cfg)
        t0 = time.monotonic()
        task = asyncio.create_task(execute_run(store, run_id))
        first_row = first_tok = None
        while not task.done() and time.monotonic() - t0 < cap_s:
            if first_tok is None:
                calls = await calls_in_flight(store, run_id)
                if calls and first_row is None:
                    first_row = time.monotonic() - t0
                if any(c["tokens"] > 0 for c in calls):
                    first_tok = time.monotonic() - t0
            await asyncio.sleep(0.1)
        capped = not task.done()
        if capped:
            task.cancel()
        try:
            await task
        except (asyncio.CancelledError, Exception) as e:  # noqa: BLE001 - a capped arm is cancelled
            if not capped:
                raise
            print(f"  {label}: stopped at the {cap_s:.0f}s cap ({type(e).__name__})")
        wall = time.monotonic() - t0
        await store.flush()
        calls = await store.llm_calls(run_id)
        done = [c for c in calls if not c["error"] and not c["cached"]]
        probs = await store.run_problems(run_id)
        results = [p.get("result") or {} for p in probs if p.get("result")]
        best: dict[str, float] = {}  # best public pass rate of any solution tested so far, per problem
        for row in await store.sandbox_runs(run_id):
            best[row["problem_id"]] = max(best.get(row["problem_id"], 0.0), float(row["pass_rate"]))
        return {
            "label": label,
            "wall_s": wall,
            "capped": capped,
            "calls": len(done),
            "calls_per_min": len(done) / (wall / 60),
            "tokens_out": sum(c["tokens_out"] for c in done),
            "mean_latency_s": sum(c["latency_s"] for c in done) / max(1, len(done)),
            "finished": len(results),
            "public_pr": mean([r.get("public_pass_rate") for r in results]),
            "private_pr": mean([r.get("private_pass_rate") for r in results]),
            "ac": mean([float(bool(r.get("passed_private"))) if r.get("scored") else None for r in results]),
            "best_public_so_far": sum(best.get(str(p["problem_id"]), 0.0) for p in probs) / max(1, len(probs)),
            "private_by_problem": {
                str(p["problem_id"]): (p.get("result") or {}).get("private_pass_rate")
                for p in probs
                if (p.get("result") or {}).get("private_pass_rate") is not None
            },
            "best_by_problem": {str(p["problem_id"]): best.get(str(p["problem_id"]), 0.0) for p in probs},
            "first_progress_s": first_row,
            "first_token_s": first_tok,
        }
    finally:
        await store.close()


def mean(xs: list[Any]) -> float | None:
    vals = [float(x) for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def fmt(v: Any, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if xs else float("nan")


def row(r: dict[str, Any]) -> str:
    return (
        f"{r['label']:8} {r['wall_s']:7.1f} {r['calls']:5d} {r['calls_per_min']:9.2f} {r['tokens_out']:7d} "
        f"{r['mean_latency_s']:6.1f} {r['finished']:4d} {fmt(r['public_pr']):>6} {fmt(r['private_pr']):>7} "
        f"{fmt(r['ac']):>5} {r['best_public_so_far']:8.2f} {fmt(r['first_progress_s'], '.1f'):>10} "
        f"{fmt(r['first_token_s'], '.1f'):>9}" + ("  (capped)" if r["capped"] else "")
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=2)
    ap.add_argument("--rollouts", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--arm-cap-s", type=float, default=300.0)
    args = ap.parse_args()
    agents = installed_agents()
    old_agents = on_engine(agents, TRANSFORMERS)
    new_agents = on_engine(agents, None)
    print(
        f"agents: {', '.join(a.model for a in agents)}"
        + ("" if len(agents) == len(CATALOG) else "  (Qwen2.5-Coder not installed: SmolLM2 alone)")
    )
    print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    t = time.monotonic()
    for arm_agents in (old_agents, new_agents):
        for a in arm_agents:
            await asyncio.to_thread(get_engine, a.model.split("/", 1)[1], a.extra[SPEC_KEY])
    for label, arm_agents in (("current", old_agents), ("new", new_agents)):
        engines = [get_engine(a.model.split("/", 1)[1], a.extra[SPEC_KEY]) for a in arm_agents]
        print(f"{label}: " + ", ".join(f"{a.name} on {e.engine} ({e.batching})" for a, e in zip(arm_agents, engines)))
    print(f"engines loaded in {time.monotonic() - t:.1f}s (before timing)")
    new = SearchConfig(rollouts=args.rollouts)
    print("new budgets:", new.call_budgets())
    header = (
        f"{'arm':8} {'wall s':>7} {'calls':>5} {'calls/min':>9} {'tok out':>7} {'lat s':>6} {'done':>4} "
        f"{'pub PR':>6} {'priv PR':>7} {'AC':>5} {'best pub':>8} {'1st prog s':>10} {'1st tok s':>9}"
    )
    rounds: list[tuple[dict[str, Any], dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as d:
        for r in range(args.rounds):
            arms = {
                "current": (old_agents, current_path(new)),
                "new": (new_agents, new),
            }
            order = ["current", "new"] if r % 2 == 0 else ["new", "current"]
            got = {}
            for label in order:
                arm_agents, search = arms[label]
                got[label] = await run_arm(
                    label, arm_agents, search, args.problems, args.arm_cap_s, Path(d) / f"round{r}"
                )
            rounds.append((got["current"], got["new"]))
            print(f"\nround {r + 1} (load average {os.getloadavg()[0]:.1f})\n{header}")
            for res in (got["current"], got["new"]):
                print(row(res))
    ratios = [n["calls_per_min"] / o["calls_per_min"] if o["calls_per_min"] else float("inf") for o, n in rounds]
    ratio = median(ratios)
    print(
        f"\ncalls/min: current {median([o['calls_per_min'] for o, _ in rounds]):.2f}, "
        f"new {median([n['calls_per_min'] for _, n in rounds]):.2f}; per-round ratios "
        + ", ".join(f"{x:.2f}" for x in ratios)
    )
    # pass rates: the private pass rate of the chosen solutions on the problems BOTH arms finished in a
    # round (a capped arm finishes fewer); and the best public pass rate of any solution each arm had
    # tested, over all problems (unfinished ones included)
    common = [
        (o["private_by_problem"][pid], n["private_by_problem"][pid])
        for o, n in rounds
        for pid in sorted(set(o["private_by_problem"]) & set(n["private_by_problem"]))
    ]
    for o, n in rounds:
        print(f"private PR by problem: current {o['private_by_problem']} | new {n['private_by_problem']}")
        print(f"best public PR tested: current {o['best_by_problem']} | new {n['best_by_problem']}")
    if common:
        key = f"private_pr_on_{len(common)}_problem_rounds_both_finished"
        pr_old = sum(o for o, _ in common) / len(common)
        pr_new = sum(n for _, n in common) / len(common)
    else:
        key = "best_public_so_far"
        pr_old = median([o[key] for o, _ in rounds])
        pr_new = median([n[key] for _, n in rounds])
    pr_ok = pr_new >= pr_old
    best_old = median([o["best_public_so_far"] for o, _ in rounds])
    best_new = median([n["best_public_so_far"] for _, n in rounds])
    print(f"best public pass rate of tested solutions: current {best_old:.2f}, new {best_new:.2f}")
    prog = median([n["first_progress_s"] for _, n in rounds if n["first_progress_s"] is not None])
    print(f"load average at the end {os.getloadavg()[0]:.1f}; median of {len(rounds)} rounds")
    print(f"TARGET e2e_local_calls_per_min_ratio measured={ratio:.2f} goal=3.00 {'ok' if ratio >= 3 else 'short'}")
    print(f"TARGET e2e_local_pass_rate({key}) measured={pr_new:.2f} goal>={pr_old:.2f} {'ok' if pr_ok else 'short'}")
    print(f"TARGET e2e_local_first_progress_s measured={prog:.1f} goal=5.0 {'ok' if prog < 5 else 'short'}")


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # engines' daemon threads are not waited for
