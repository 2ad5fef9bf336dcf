"""Benchmark: the concurrent search engine against the same search run strictly sequentially.

Workload (issue 5): 20 problems, 2 scripted policies that answer after a simulated latency
of 0.5 s, MC-Tree-Of-Agents with 8 rollouts (3 thoughts per policy, prune + refine on), the
real sandbox. The problems are 'ladders' whose public pass rate is set by the reasoning path,
with different starting levels, so some are solved after a few rollouts, some never, and
pruning/refinement happen along the way.

The anchor runs the identical search with one LLM call at a time and one problem at a time
(as RethinkMCTS / PG-TD / the BDC release do). Both runs go through ``execute_run`` on one
store; the trees of every problem must be identical.

    python bench/search_concurrency.py [--problems 20] [--rollouts 8] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.agents.scripted import ScriptedPolicy  # noqa: E402
from engine.problems.model import Problem, TestCase, TestStyle  # noqa: E402
from engine.search.config import RunConfig, SearchConfig  # noqa: E402
from engine.search.runner import create_search_run, execute_run  # noqa: E402
from engine.search.tree import TreeState  # noqa: E402
from engine.store import Store  # noqa: E402


def problems(n: int) -> list[Problem]:
    out = []
    for i in range(n):
        out.append(
            Problem(
                id=f"ladder/{i}",
                dataset="bench",
                statement=f"Return x squared (variant {i}).",
                style=TestStyle.ASSERT,
                public_tests=[TestCase(f"assert candidate({j}) == {j * j}") for j in range(4)],
                private_tests=[TestCase(f"assert candidate({j}) == {j * j}") for j in range(2, 6)],
                difficulty=("easy", "medium", "hard")[i % 3],
                entry_point="f",
                meta={"start": 1 + i % 3, "goal": 5 + i % 4},
            )
        )
    return out


def policies(probs: list[Problem], latency: float) -> list[ScriptedPolicy]:
    meta = {p.id: p.meta for p in probs}

    def level(pid: str, path: list[str]) -> int:
        k = meta[pid]["start"]
        for t in path:
            k += t.split().count("up") - t.split().count("down")
        return k

    def make(name: str, thoughts: list[str], refine_to: str) -> ScriptedPolicy:
        def solution(view, path):
            k = level(view.id, path)
            if k >= meta[view.id]["goal"]:
                return "def f(x):\n    return x * x\n"
            return f"def f(x):\n    return x * x if x < {k} else -1\n"

        return ScriptedPolicy(
            name,
            thoughts_fn=lambda view, path, k: [f"{t} ({name})" for t in thoughts[:k]],
            solution_fn=solution,
            reflect_fn=lambda view, path, code, fb, v: f"{name}: that step lost tests ({v:.2f})",
            refine_fn=lambda view, path, ill, s, v: refine_to,
            latency_s=latency,
        )

    return [make("alpha", ["up", "same", "down"], "up instead"), make("beta", ["same", "down", "up"], "same again")]


async def one_run(store: Store, probs: list[Problem], rollouts: int, latency: float, sequential: bool):
    cfg = RunConfig(
        dataset="bench",
        strategy="mcts",
        agents=[{"name": "alpha", "model": "scripted:broken"}, {"name": "beta", "model": "scripted:broken"}],
        search=SearchConfig(rollouts=rollouts),
        sequential=sequential,
        llm_concurrency=64,
        problem_concurrency=len(probs),
        sandbox_workers=2,
    )
    run_id = await create_search_run(store, cfg, probs)
    pols = policies(probs, latency)
    t0 = time.perf_counter()
    await execute_run(store, run_id, policies=pols)
    wall = time.perf_counter() - t0
    state = TreeState().apply_all(await store.events(run_id))
    trees = {pid: t.signature() for pid, t in state.problems.items()}
    calls = sum(p.calls for p in pols)
    row = await store.run(run_id)
    return wall, trees, calls, row.totals


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=20)
    ap.add_argument("--rollouts", type=int, default=8)
    ap.add_argument("--latency", type=float, default=0.5)
    args = ap.parse_args()
    probs = problems(args.problems)
    with tempfile.TemporaryDirectory() as d:
        store = await Store.open(Path(d) / "bench.db")
        try:
            wall_c, trees_c, calls_c, tot_c = await one_run(store, probs, args.rollouts, args.latency, False)
            print(
                f"engine     : {wall_c:8.1f} s  {calls_c} policy calls  solved {tot_c['solved_public']}/{len(probs)}  "
                f"PR {100 * tot_c['pr']:.1f}  AC {100 * tot_c['ac']:.1f}",
                flush=True,
            )
            wall_s, trees_s, calls_s, tot_s = await one_run(store, probs, args.rollouts, args.latency, True)
            print(
                f"sequential : {wall_s:8.1f} s  {calls_s} policy calls  solved {tot_s['solved_public']}/{len(probs)}  "
                f"PR {100 * tot_s['pr']:.1f}  AC {100 * tot_s['ac']:.1f}",
                flush=True,
            )
        finally:
            await store.close()
    nodes = sum(len(t) for t in trees_c.values())
    identical = trees_c == trees_s and calls_c == calls_s
    print(f"trees      : {len(trees_c)} problems, {nodes} nodes, identical={identical}")
    speedup = wall_s / wall_c if wall_c > 0 else float("inf")
    print(f"TARGET search_concurrency_speedup measured={speedup:.1f}x goal=10x {'ok' if speedup >= 10 else 'short'}")
    print(f"TARGET search_concurrency_identical_trees measured={identical} goal=True {'ok' if identical else 'short'}")


if __name__ == "__main__":
    asyncio.run(main())
