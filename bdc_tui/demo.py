"""Deterministic demo data: a run store that looks like a real MC-Tree-Of-Agents search.

Used by ``bdc-tui --demo``, the TUI tests, the snapshot tests, the screenshot script and
the benchmark. The events follow the vocabulary of ``engine.search.events`` exactly, so
the same ``TreeState`` fold consumes them; everything derives from a seeded RNG and,
with ``fixed_time``, from fixed timestamps, so the screens render identically each time.
"""

from __future__ import annotations

import asyncio
import math
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from engine.problems.model import Problem, TestCase, TestStyle
from engine.search import events as ev
from engine.store import Event

BASE_TIME = 1_767_225_600.0  # 2026-01-01 00:00 UTC: fixed clock for deterministic screens
POLICIES = ("gpt-4o-mini", "claude-haiku", "qwen-coder")
MODELS = {"gpt-4o-mini": "openai/gpt-4o-mini", "claude-haiku": "anthropic/claude-3-5-haiku", "qwen-coder": "local/qwen2.5-coder-0.5b"}

_THOUGHTS = (
    "Sort the numbers first so that close elements become neighbours.",
    "Compare every pair with two nested loops; n is small.",
    "Track the minimum gap between adjacent sorted values.",
    "Use a sliding window of size two over the sorted list.",
    "Handle the empty list and the single element as special cases.",
    "Use a set to detect exact duplicates early.",
    "Return as soon as a gap below the threshold is found.",
    "Bucket values by floor(x / threshold) and check neighbouring buckets.",
    "Convert to integers scaled by 1000 to avoid float comparisons.",
    "Iterate with zip(xs, xs[1:]) to keep the code short.",
)
_CODE = (
    "def has_close_elements(numbers, threshold):\n"
    "    xs = sorted(numbers)\n"
    "    return any(b - a < threshold for a, b in zip(xs, xs[1:]))\n",
    "def has_close_elements(numbers, threshold):\n"
    "    for i, a in enumerate(numbers):\n"
    "        for j, b in enumerate(numbers):\n"
    "            if i != j and abs(a - b) < threshold:\n"
    "                return True\n"
    "    return False\n",
    "def has_close_elements(numbers, threshold):\n"
    "    xs = sorted(numbers)\n"
    "    return any(b - a <= threshold for a, b in zip(xs, xs[2:]))\n",
)


def demo_problems(n: int = 2) -> list[Problem]:
    """HumanEval-shaped problems (assert-style tests) for the demo runs."""
    out = []
    for i in range(n):
        out.append(
            Problem(
                id=f"HumanEval/{i}",
                dataset="humaneval",
                statement=(
                    "Check if in given list of numbers, are any two numbers closer to each "
                    "other than given threshold."
                ),
                style=TestStyle.ASSERT,
                public_tests=[TestCase("assert candidate([1.0, 2.0, 3.9, 4.0], 0.3) == True")],
                private_tests=[
                    TestCase("assert candidate([1.0, 2.0, 3.0], 0.5) == False"),
                    TestCase("assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True"),
                ],
                difficulty="easy" if i % 2 == 0 else "hard",
                entry_point="has_close_elements",
            )
        )
    return out


@dataclass
class _N:
    id: str
    parent: str | None
    depth: int
    pr: float
    q: float = 0.0
    n: int = 0
    children: list[str] = field(default_factory=list)
    pruned: bool = False


def search_events(
    problem_id: str,
    *,
    seed: int = 0,
    max_nodes: int = 60,
    rollouts: int | None = None,
    branching: int = 3,
    solve: bool = True,
) -> Iterator[Event]:
    """Events of one problem's search: select/expand/simulate/backup, prunes, refines, a solution."""
    rng = random.Random(f"{problem_id}:{seed}")
    nodes: dict[str, _N] = {"0": _N("0", None, 0, 0.0)}
    next_id = 1
    pid = problem_id

    def E(kind: str, _node: str | None, **payload: Any) -> Event:
        return Event("", 0, 0.0, kind, pid, _node, payload)

    yield E(ev.PROBLEM_STARTED, None, difficulty="easy", statement_preview="Check if in given list...", public_tests=1, private_tests=2)
    yield E(ev.ROOT, "0", node="0", statement_preview="Check if in given list...")
    rollout = 0
    solved = False
    limit = rollouts if rollouts is not None else 10**9
    while len(nodes) < max_nodes and rollout < limit:
        rollout += 1
        # select: descend by UCB over live children until a leaf
        path = ["0"]
        cur = nodes["0"]
        while cur.children:
            live = [nodes[c] for c in cur.children if not nodes[c].pruned]
            if not live:
                break
            total = sum(c.n for c in live) + 1
            cur = max(live, key=lambda c: c.q + 1.2 * math.sqrt(math.log(total + 1) / (c.n + 1)) + rng.random() * 1e-3)
            path.append(cur.id)
        yield E(ev.SELECT, cur.id, path=list(path), rollout=rollout)
        kids = []
        for b in range(branching):
            cid = str(next_id)
            next_id += 1
            policy = POLICIES[b % len(POLICIES)]
            pr = min(1.0, max(0.0, cur.pr + rng.uniform(-0.45, 0.5)))
            if not solve:
                pr = min(pr, 0.67)
            pr = round(pr * 3) / 3
            nodes[cid] = _N(cid, cur.id, cur.depth + 1, pr)
            cur.children.append(cid)
            kids.append(
                {"node": cid, "thought": rng.choice(_THOUGHTS), "policy": policy,
                 "prior": round(rng.uniform(0.2, 0.9), 3), "depth": cur.depth + 1, "terminal": False}
            )
        yield E(ev.EXPAND, cur.id, parent=cur.id, rollout=rollout, children=kids)
        best_child = None
        for k in kids:
            c = nodes[k["node"]]
            yield E(ev.SIMULATE, c.id, **_simulate_payload(rng, c, rollout))
            if c.pr + 1e-9 < cur.pr and cur.id != "0":
                if rng.random() < 0.5:
                    c.pruned = True
                    yield E(ev.PRUNE, c.id, node=c.id, parent=cur.id, rollout=rollout, pass_rate=c.pr, parent_pass_rate=cur.pr)
                else:
                    summary = "The solution misses the case where the closest pair is not adjacent in input order."
                    yield E(ev.REFLECT, c.id, node=c.id, rollout=rollout, policy=k["policy"], summary=summary)
                    new = rng.choice(_THOUGHTS)
                    yield E(ev.REFINE, c.id, node=c.id, rollout=rollout, policy=k["policy"], old_thought=k["thought"], new_thought=new, summary=summary)
                    c.pr = cur.pr
                    yield E(ev.SIMULATE, c.id, **_simulate_payload(rng, c, rollout))
            if best_child is None or c.pr > best_child.pr:
                best_child = c
            if c.pr >= 1.0 and not solved:
                solved = True
                yield E(ev.SOLUTION_FOUND, c.id, node=c.id, policy=k["policy"], code=_CODE[0], public_pass_rate=1.0)
        reward = best_child.pr if best_child else 0.0
        full = path + ([best_child.id] if best_child else [])
        for nid in full:
            nn = nodes[nid]
            nn.n += 1
            nn.q += (reward - nn.q) / nn.n
        yield E(ev.BACKUP, None, rollout=rollout, path=full, reward=reward,
                q={nid: round(nodes[nid].q, 4) for nid in full}, n={nid: nodes[nid].n for nid in full})
        yield E(ev.ROLLOUT_FINISHED, None, rollout=rollout)
        if rollout % 17 == 5:
            yield E(ev.LLM_ERROR, None, policy=POLICIES[1], stage="thoughts", message="rate limited (429); retried in 2.0 s")
    best = max(nodes.values(), key=lambda n: (n.pr, -n.depth))
    yield E(
        ev.PROBLEM_FINISHED, best.id, node=best.id, policy=POLICIES[0], code=_CODE[0],
        public_pass_rate=best.pr, private_pass_rate=1.0 if best.pr >= 1 else round(best.pr * 0.5, 3),
        passed_private=best.pr >= 1, rollouts=rollout, calls=rollout * 4, tokens=rollout * 2100,
        cost=round(rollout * 0.0031, 4), wall_s=round(rollout * 1.7, 1), status="solved" if best.pr >= 1 else "unsolved",
    )


def _simulate_payload(rng: random.Random, c: _N, rollout: int) -> dict[str, Any]:
    sols = []
    for i, policy in enumerate(POLICIES):
        pr = c.pr if i == 0 else round(min(1.0, max(0.0, c.pr + rng.choice((-1 / 3, 0, 0)))) * 3) / 3
        passed = round(pr * 3)
        verdicts = ["passed"] * passed + ["failed"] * (3 - passed)
        sols.append({
            "policy": policy, "code": _CODE[0] if passed == 3 else _CODE[1 + (i % 2)],
            "pass_rate": pr, "passed": passed, "total": 3, "verdicts": verdicts,
            "feedback": "" if passed == 3 else "test 3: assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True\n  expected True, got False",
            "parse_error": None,
        })
    return {"node": c.id, "rollout": rollout, "pass_rate": max(s["pass_rate"] for s in sols) if c.pr else c.pr, "solutions": sols}


async def write_run(
    store: Any,
    *,
    run_id: str,
    problems: list[Problem],
    status: str = "finished",
    max_nodes: int = 60,
    seed: int = 0,
    name: str | None = None,
    llm_calls: bool = True,
) -> str:
    """Create ``run_id`` in ``store`` and write a complete demo search into it."""
    config = {
        "dataset": "humaneval", "strategy": "mcts-agents", "agents": list(POLICIES),
        "search": {"rollouts": 40, "branching": 3},
    }
    await store.create_run(dataset="humaneval", strategy="mcts-agents", agents=list(POLICIES),
                           config=config, problems=problems, run_id=run_id, name=name)
    await store.claim_run(run_id)
    store.emit(run_id, ev.RUN_STARTED, {"config": config})
    for i, p in enumerate(problems):
        finished: dict[str, Any] | None = None
        for e in search_events(p.id, seed=seed + i, max_nodes=max_nodes, solve=(i % 2 == 0)):
            store.emit(run_id, e.kind, e.payload, problem_id=e.problem_id, node_id=e.node_id)
            if llm_calls and e.kind == ev.EXPAND:
                for c in e.payload.children:
                    store.record_llm_call({
                        "run_id": run_id, "problem_id": p.id, "node_id": c.node, "policy": c.policy,
                        "model": MODELS[c.policy], "tokens_in": 812, "tokens_out": 96,
                        "cost": 0.00041, "latency_s": 1.25, "retries": 0, "cached": False,
                    })
            if e.kind == ev.PROBLEM_FINISHED:
                finished = e.payload.to_dict()
        store.set_problem_result(run_id, p.id, "finished", finished)
    if status == "finished":
        store.emit(run_id, ev.RUN_FINISHED, {"status": "finished", "metrics": {}})
    await store.flush()
    await store.set_run_status(run_id, status, error="sandbox crashed: worker killed by signal 9" if status == "failed" else None)
    return run_id


async def write_jobs(store: Any) -> None:
    """One cluster job, one training job with a loss curve, one finished evaluation."""
    rng = random.Random(7)
    points, labels = [], []
    centres = [(-4.0, 2.0), (3.0, 3.5), (0.5, -3.5)]
    for i in range(90):
        k = i % 3
        cx, cy = centres[k]
        points.append([round(cx + rng.gauss(0, 1.1), 3), round(cy + rng.gauss(0, 1.1), 3)])
        labels.append(k)
    samples = {
        "0": ["Sort then compare neighbours", "Two pointers over the sorted array"],
        "1": ["Dynamic programming over prefixes", "Memoised recursion on (i, j)"],
        "2": ["Breadth-first search on the grid", "Union-find over edges"],
    }
    await store.create_job("cluster", {"run_id": "r-demo-humaneval", "k": 3}, job_id="j-demo-cluster")
    await store.finish_job("j-demo-cluster", "finished", result={
        "k": 3, "points": points, "labels": labels, "sizes": [labels.count(k) for k in range(3)], "samples": samples,
    })
    await store.create_job("train", {"base": "qwen2.5-coder-0.5b", "experts": 3, "epochs": 2}, job_id="j-demo-train")
    await store.claim_job("j-demo-train")
    for step in range(1, 61):
        store.metric("loss", 2.4 * math.exp(-step / 22) + 0.35 + 0.05 * math.sin(step), step=step, job_id="j-demo-train")
    store.job_progress("j-demo-train", 0.6, "expert 2/3, epoch 1/2, step 60/100")
    await store.create_job("eval", {"solvers": ["w/o tuning", "DisenLoRA"]}, job_id="j-demo-eval")
    rows = []
    for solver, base in (("w/o tuning", 20.0), ("SFT on all", 22.0), ("DisenLoRA", 26.0)):
        for dataset, diffs in (("apps", ("introductory", "interview", "competition")), ("humaneval", ("easy", "hard"))):
            for j, d in enumerate(diffs):
                rows.append({"solver": solver, "dataset": dataset, "difficulty": d,
                             "pr": round(base - 4 * j + (3 if dataset == "humaneval" else 0), 2),
                             "ac": round((base - 4 * j) / 4, 2)})
    await store.finish_job("j-demo-eval", "finished", result={"rows": rows})
    await store.flush()


def fix_times(db_path: Path | str) -> None:
    """Rewrite every timestamp to a fixed clock so screens render identically."""
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            conn.execute("UPDATE events SET ts = ? + seq * 0.5", (BASE_TIME,))
            conn.execute(
                "UPDATE runs SET created_at = ? + rowid * 60, started_at = ? + rowid * 60, "
                "finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ? + rowid * 60 + 900 END, "
                "pid = NULL, host = 'demo'", (BASE_TIME, BASE_TIME, BASE_TIME))
            conn.execute(
                "UPDATE jobs SET created_at = ? + rowid * 60, started_at = ? + rowid * 60, "
                "finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ? + rowid * 60 + 1800 END, "
                "pid = NULL, host = 'demo'", (BASE_TIME, BASE_TIME, BASE_TIME))
            conn.execute("UPDATE metrics SET ts = ? + id * 5", (BASE_TIME,))
            conn.execute("UPDATE llm_calls SET ts = ? + id", (BASE_TIME,))
    finally:
        conn.close()


async def build_demo_db(path: Path | str, *, fixed_time: bool = True, max_nodes: int = 60) -> Path:
    """A store with three runs (finished, interrupted, failed) and three jobs."""
    from engine.store import Store

    path = Path(path)
    store = await Store.open(path)
    try:
        probs = demo_problems(2)
        await write_run(store, run_id="r-demo-humaneval", problems=probs, max_nodes=max_nodes, name="demo")
        await write_run(store, run_id="r-demo-interrupted", problems=probs[:1], status="interrupted", max_nodes=24, seed=3)
        await write_run(store, run_id="r-demo-failed", problems=probs[1:], status="failed", max_nodes=9, seed=5)
        await write_jobs(store)
    finally:
        await store.close()
    if fixed_time:
        fix_times(path)
    return path


def build_demo_db_sync(path: Path | str, **kw: Any) -> Path:
    return asyncio.run(build_demo_db(path, **kw))
