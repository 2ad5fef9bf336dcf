"""Benchmark: the latency-bound search on 1 vs 2 Ray nodes (``--backend ray``), per-node
concurrency fixed.

Workload: the search of ``bench/search_concurrency.py`` (ladder problems, two scripted
policies answering after a simulated LLM latency, MC-Tree-Of-Agents with prune + refine, the
real sandbox), scaled down by default. Each node searches ``--per-node`` problems at once
with its own sandbox pool, as a real node with its own rate limit would. Both sides run on one
local ``ray.cluster_utils.Cluster`` of 2 simulated nodes (``max_nodes`` 1 vs 2), alternating,
``--rounds`` times; the ratio is of the medians of the search wall times (actor start
excluded). Ray's start-up (the cluster, then the actors and sandbox pools of each run) is
printed separately. Every run's trees must equal the 1-node run's.

On a machine whose network is loopback only, Ray needs a network namespace of its own: the
script re-executes itself under ``unshare -n`` when it is root.

    python bench/scale_out.py [--problems 24] [--rollouts 4] [--latency 0.5] [--per-node 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.search_concurrency import policies, problems  # noqa: E402
from engine.distributed.local import NETNS_ENV, LocalCluster, in_isolated_netns, netns_argv, netns_env  # noqa: E402
from engine.search.config import RunConfig, SearchConfig  # noqa: E402
from engine.search.runner import create_search_run, execute_run  # noqa: E402
from engine.search.tree import TreeState  # noqa: E402
from engine.store import Store  # noqa: E402

GOAL = 1.7


async def one_run(store: Store, probs, args, nodes: int):
    from engine.distributed.backend import RayBackend

    cfg = RunConfig(
        dataset="bench",
        strategy="mcts",
        agents=[{"name": "alpha", "model": "scripted:broken"}, {"name": "beta", "model": "scripted:broken"}],
        search=SearchConfig(rollouts=args.rollouts),
        llm_concurrency=64,
        problem_concurrency=args.per_node,
        sandbox_workers=1,
    )
    run_id = await create_search_run(store, cfg, probs)
    backend = RayBackend(max_nodes=nodes)
    t0 = time.perf_counter()
    await execute_run(store, run_id, policies=policies(probs, args.latency), backend=backend)
    wall = time.perf_counter() - t0
    start = backend.timings.get("actors_ready_s", 0.0)
    state = TreeState().apply_all(await store.events(run_id))
    trees = {pid: t.signature() for pid, t in state.problems.items()}
    row = await store.run(run_id)
    return wall - start, start, trees, row.totals


async def bench(args, cluster: LocalCluster) -> None:
    probs = problems(args.problems)
    walls: dict[int, list[float]] = {1: [], 2: []}
    starts: list[float] = []
    identical = True
    ref = None
    with tempfile.TemporaryDirectory() as d:
        store = await Store.open(Path(d) / "bench.db")
        try:
            for r in range(args.rounds):
                for nodes in (1, 2):
                    wall, start, trees, tot = await one_run(store, probs, args, nodes)
                    walls[nodes].append(wall)
                    starts.append(start)
                    ref = trees if ref is None else ref
                    identical &= trees == ref
                    print(
                        f"round {r + 1} {nodes} node{'s' if nodes > 1 else ' '}: search {wall:6.1f} s  "
                        f"(actors + sandbox pools {start:4.1f} s)  solved {tot['solved_public']}/{len(probs)}  "
                        f"AC {100 * tot['ac']:.1f}",
                        flush=True,
                    )
        finally:
            await store.close()
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    ratio = one / two if two > 0 else float("inf")
    print(
        f"ray start-up: cluster of 2 nodes {cluster.startup_s:.1f} s; per run actors + sandbox pools "
        f"median {statistics.median(starts):.1f} s (not in the search times)"
    )
    print(f"median search: 1 node {one:.1f} s, 2 nodes {two:.1f} s; trees identical={identical}")
    print(f"TARGET scale_out measured={ratio:.2f} goal={GOAL} {'ok' if ratio >= GOAL and identical else 'short'}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=24)
    ap.add_argument("--rollouts", type=int, default=4)
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--per-node", type=int, default=3, help="problems searched at once on each node")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if not (os.environ.get(NETNS_ENV) == "1" or in_isolated_netns()):
        argv = netns_argv([sys.executable, *sys.argv])
        if argv is not None:
            raise SystemExit(subprocess.run(argv, env=netns_env()).returncode)
        print("note: not root; Ray may not reach this machine's address (loopback-only networks need a namespace)")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    with LocalCluster(nodes=2, cpus=1) as cluster:
        asyncio.run(bench(args, cluster))


if __name__ == "__main__":
    main()
