"""Calls in flight in the store (issue 16): a slow, streaming, local-like agent shows up in
``call_progress`` within seconds of launch, its token count grows, writes stay at most about one a
second per call, and the row goes when the call ends."""

from __future__ import annotations

import asyncio
import threading
import time

from engine.agents import CallContext, LLMClient, Policy, PolicySpec
from engine.agents.llm import import_litellm
from engine.agents.progress import REPORT_TOKENS
from engine.search.config import SearchConfig
from engine.search.context import ProblemContext
from engine.search.registry import make_strategy
from engine.search.strategy import solve_problem
from engine.search.tree import TreeState
from engine.store import call_progress
from engine.store.call_progress import CallProgressTable, calls_in_flight, describe, progress_sink
from tests.search.helpers import FakeSandbox, ladder_problem

TOKENS_PER_S = 20
REPLY_TOKENS = 60  # 3 s per call


def slow_local_like(replies: dict[str, str]):
    """A completion_fn that 'generates' REPLY_TOKENS tokens in a worker thread, reporting its count to
    the bound reporter as a local engine does, then answers like litellm."""
    litellm = import_litellm()

    async def fn(**kw):
        report = REPORT_TOKENS.get()

        def generate() -> None:
            for n in range(1, REPLY_TOKENS + 1):
                time.sleep(1 / TOKENS_PER_S)
                if report is not None:
                    report(n)

        await asyncio.to_thread(generate)
        prompt = kw["messages"][-1]["content"]
        text = next((r for key, r in replies.items() if key in prompt), "ok")
        return await litellm.acompletion(model="openai/gpt-4o-mini", messages=kw["messages"], mock_response=text)

    return fn


async def test_a_slow_call_shows_in_the_store_within_seconds_and_leaves_when_done(store, monkeypatch):
    writes: list[tuple[str, float]] = []
    real_write = CallProgressTable.write

    def counting(self, sql, params):
        writes.append((sql.split()[0], time.monotonic()))
        real_write(self, sql, params)

    monkeypatch.setattr(CallProgressTable, "write", counting)
    problem = ladder_problem()
    run_id = await store.create_run(
        dataset="synthetic", strategy="mcts", agents=["slow"], config={}, problems=[problem]
    )
    await store.claim_run(run_id)
    fn = slow_local_like(
        {
            "candidate next reasoning steps": '["square x <END>"]',
            "fenced block": "```python\ndef f(x):\n    return x * x\n```",
        }
    )
    client = LLMClient(sink=store, progress=progress_sink(store), completion_fn=fn)
    policy = Policy(PolicySpec("slow", "openai/gpt-4o-mini"), client, SearchConfig().call_budgets())
    strat = make_strategy("mcts", SearchConfig(rollouts=1))
    px = ProblemContext(
        store=store,
        run_id=run_id,
        problem=problem,
        state=TreeState(),
        policies=strat.select_policies([policy]),
        sandbox=FakeSandbox(),
        config=strat.config,
    )
    launched = time.monotonic()
    search = asyncio.create_task(solve_problem(strat, px))
    first_seen = first_tokens = None
    seen: list[dict] = []
    while not search.done() and time.monotonic() - launched < 60:
        calls = await calls_in_flight(store, run_id)
        if calls:
            seen.append(calls[0])
            first_seen = first_seen or time.monotonic() - launched
            if calls[0]["tokens"] > 0 and first_tokens is None:
                first_tokens = time.monotonic() - launched
        await asyncio.sleep(0.1)
    await search
    await store.flush()
    assert first_seen is not None and first_seen < 5.0, first_seen
    assert first_tokens is not None and first_tokens < 5.0, first_tokens
    assert "solution" in {c["kind"] for c in seen} <= {"thought", "solution"}
    assert all(c["policy"] == "slow" and c["problem_id"] == problem.id for c in seen)
    assert "slow writing a solution for #0 ·" in describe(seen[0])
    assert await calls_in_flight(store, run_id) == []  # every call ended: no row left
    # at most one count write a second per call (+1 for the last partial second)
    updates = [t for kind, t in writes if kind == "UPDATE"]
    calls_made = sum(1 for kind, _ in writes if kind.startswith("INSERT"))
    per_call_s = REPLY_TOKENS / TOKENS_PER_S
    assert 0 < len(updates) <= calls_made * (per_call_s / call_progress.INTERVAL_S + 1)


async def test_token_reports_from_many_threads_are_throttled(store):
    run_id = await store.create_run(dataset="synthetic", strategy="mcts", agents=[], config={}, problems=[])
    await store.claim_run(run_id)  # calls are in flight only while their run is running
    table = CallProgressTable(store, interval_s=0.2)
    shown = table.begin(CallContext(run_id=run_id, problem_id="p", node_id="3"), "pol", "m", "solution")
    threads = [threading.Thread(target=lambda: [shown.tokens(n) for n in range(1, 2001)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    await asyncio.sleep(0.5)
    shown.tokens(2001)
    await asyncio.sleep(0.05)
    await store.flush()
    [row] = await calls_in_flight(store, run_id)
    assert row["tokens"] == 2001 and row["node_id"] == "3"
    shown.end()
    shown.tokens(5000)  # late reports after the end are ignored
    await asyncio.sleep(0.05)
    await store.flush()
    assert await calls_in_flight(store, run_id) == []


def test_live_status_line_names_the_call_in_flight():
    from bdc_tui.widgets.run_status import RunStatus
    from engine.search.tree import TreeState

    line = RunStatus()
    now = time.time()
    line.show_in_flight(
        [
            {
                "problem_id": "other",
                "node_id": "1",
                "policy": "qwen",
                "kind": "thought",
                "tokens": 3,
                "started_at": now,
            },
            {
                "problem_id": "HumanEval/0",
                "node_id": "12",
                "policy": "smollm2",
                "kind": "solution",
                "tokens": 143,
                "started_at": now - 9,
            },
        ]
    )
    state = TreeState()
    line.show(state, None, status="running")
    assert "qwen proposing thoughts for #1 · 3 tok" in line._content.plain and "(+1 more)" in line._content.plain
    line.show(state, None, status="finished")  # a stale row of a run that ended is not shown
    assert "tok" not in line._content.plain


async def _row(store, run_id: str, call: str, updated_at: float) -> None:
    store._enqueue(
        "INSERT INTO call_progress (call_id, run_id, problem_id, node_id, policy, model, kind, tokens, started_at, "
        "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (call, run_id, "p", "1", "pol", "m", "solution", 7, updated_at, updated_at),
    )
    await store.flush()


async def test_no_call_is_in_flight_for_a_run_that_is_not_running(store):
    """A kill -9 leaves the run's rows behind: they show nothing once the run is not running, are
    dropped when it is marked interrupted or resumed, and a row untouched for too long never shows."""
    import os
    import subprocess

    run_id = await store.create_run(dataset="synthetic", strategy="mcts", agents=[], config={}, problems=[])
    await store.claim_run(run_id)
    now = time.time()
    await _row(store, run_id, "fresh", now)
    await _row(store, run_id, "stale", now - call_progress.STALE_S - 5)
    assert [c["call_id"] for c in await calls_in_flight(store, run_id)] == ["fresh"]
    await store.set_run_status(run_id, "failed", "boom")
    assert await calls_in_flight(store, run_id) == []  # the run is not running: nothing is in flight
    # a dead process's run: marked interrupted, its rows go
    dead = subprocess.Popen(["true"])
    dead.wait()
    store._enqueue("UPDATE runs SET status='running', pid=? WHERE id=?", (dead.pid, run_id))
    await store.flush()
    assert dead.pid != os.getpid() and await store.mark_dead_runs_interrupted() == [run_id]
    rows = await store._fetchdicts("SELECT call_id FROM call_progress WHERE run_id=?", (run_id,))
    assert rows == []


async def test_a_resumed_or_ended_run_leaves_no_rows(store):
    """Rows a crashed process left are gone once the run is taken up again, and none is left at its end."""
    from engine.agents.scripted import ScriptedPolicy
    from engine.search.config import RunConfig
    from engine.search.runner import create_search_run, execute_run
    from tests.search.helpers import FakeSandbox, ladder_problem

    cfg = RunConfig(
        dataset="synthetic",
        strategy="mcts",
        agents=[{"name": "A", "model": "scripted:broken"}],
        search=SearchConfig(rollouts=2),
    )
    run_id = await create_search_run(store, cfg, [ladder_problem()])
    await _row(store, run_id, "left-by-a-crash", time.time())
    seen: list[str] = []

    async def thoughts(problem, path, k):  # runs while the resumed run searches
        seen.extend(c["call_id"] for c in await calls_in_flight(store, run_id))
        return [f"step {len(path)}.{i}" for i in range(k)]

    await execute_run(store, run_id, policies=[ScriptedPolicy("A", thoughts_fn=thoughts)], sandbox=FakeSandbox())
    assert "left-by-a-crash" not in seen
    assert await store._fetchdicts("SELECT call_id FROM call_progress WHERE run_id=?", (run_id,)) == []
