"""Kill -9 a run mid-search, resume it from the events: the same trees as an uninterrupted run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.search import events as ev
from engine.search.config import RunConfig, SearchConfig
from engine.search.runner import create_search_run, execute_run
from engine.search.tree import TreeState
from tests.search.crash_worker import crash_policies
from tests.search.helpers import FakeSandbox, ladder_problem

ROOT = Path(__file__).resolve().parents[2]


def _cfg() -> RunConfig:
    return RunConfig(
        dataset="synthetic",
        strategy="mcts",
        agents=[{"name": "A", "model": "scripted:broken"}],
        search=SearchConfig(rollouts=6, stop_on_solve=False),
        problem_concurrency=2,
    )


def _problems():
    return [ladder_problem(f"ladder/{i}") for i in range(3)]


async def _trees(store, run_id):
    st = TreeState().apply_all(await store.events(run_id))
    return {pid: t.signature() for pid, t in st.problems.items()}


def _spawn(db: Path, run_id: str, latency: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.search.crash_worker", str(db), run_id, str(latency)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def _wait_for_events(store, run_id, n, proc, timeout=60.0) -> int:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        seq = await store.last_seq(run_id)
        if seq >= n:
            return seq
        assert proc.poll() is None, "the worker ended before it could be interrupted"
        await asyncio.sleep(0.02)
    raise AssertionError("the worker wrote no events")


async def test_kill9_then_resume_gives_the_uninterrupted_trees(store, tmp_path):
    ref = await create_search_run(store, _cfg(), _problems())
    ref_pols = crash_policies()
    await execute_run(store, ref, policies=ref_pols, sandbox=FakeSandbox())
    ref_trees = await _trees(store, ref)
    ref_calls = sum(p.calls for p in ref_pols)
    total = await store.last_seq(ref)

    run_id = await create_search_run(store, _cfg(), _problems())
    proc = _spawn(store.path, run_id, 0.03)
    try:
        await _wait_for_events(store, run_id, total // 2, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = await store.events(run_id)
    assert 0 < len(before) < total and not any(e.kind == ev.RUN_FINISHED for e in before)
    assert (await store.run(run_id)).status == "running"
    assert run_id in await store.mark_dead_runs_interrupted()
    assert (await store.run(run_id)).status == "interrupted"

    pols = crash_policies()
    await execute_run(store, run_id, policies=pols, sandbox=FakeSandbox())
    row = await store.run(run_id)
    assert row.status == "finished" and row.totals["problems_done"] == 3
    assert await _trees(store, run_id) == ref_trees
    # the stored part was replayed from the journal, not asked again
    assert sum(p.calls for p in pols) < ref_calls
    # the log's events of each problem are exactly the uninterrupted sequence (no duplicates)
    ref_kinds = [(e.problem_id, e.kind) for e in await store.events(ref) if e.problem_id]
    kinds = [(e.problem_id, e.kind) for e in await store.events(run_id) if e.problem_id]
    for pid in {p for p, _ in ref_kinds}:
        assert [k for p, k in kinds if p == pid and k != ev.LLM_ERROR] == [k for p, k in ref_kinds if p == pid]
    # a resumed problem's wall time counts the part searched before the kill too
    finished = {e.problem_id: e.payload_dict() for e in await store.events(run_id) if e.kind == ev.PROBLEM_FINISHED}
    for pid in {e.problem_id for e in before if e.problem_id}:
        stamps = [e.ts for e in before if e.problem_id == pid]
        assert finished[pid]["wall_s"] >= round(max(stamps) - min(stamps), 3)


async def test_resuming_a_finished_run_changes_nothing(store):
    run_id = await create_search_run(store, _cfg(), _problems()[:1])
    await execute_run(store, run_id, policies=crash_policies(), sandbox=FakeSandbox())
    n = await store.last_seq(run_id)
    pols = crash_policies()
    await execute_run(store, run_id, policies=pols, sandbox=FakeSandbox())
    assert sum(p.calls for p in pols) == 0
    evs = await store.events(run_id)
    assert [e.kind for e in evs[n:]] == [ev.RUN_FINISHED]


async def test_sigterm_marks_the_run_cancelled(store):
    run_id = await create_search_run(store, _cfg(), _problems())
    proc = _spawn(store.path, run_id, 0.05)
    try:
        await _wait_for_events(store, run_id, 5, proc)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 143
    row = await store.run(run_id)
    assert row.status == "cancelled"
    assert (await store.events(run_id))[-1].payload.status == "cancelled"


async def test_a_crash_marks_the_run_failed(store):
    run_id = await create_search_run(store, _cfg(), _problems()[:1])

    class Exploding(FakeSandbox):
        async def __aenter__(self):
            raise RuntimeError("sandbox could not start")

    import pytest

    from engine.search import runner

    orig = runner._open_sandbox
    runner._open_sandbox = lambda workers: Exploding()
    try:
        with pytest.raises(RuntimeError):
            await execute_run(store, run_id, policies=crash_policies())
    finally:
        runner._open_sandbox = orig
    row = await store.run(run_id)
    assert row.status == "failed" and "sandbox could not start" in row.error


async def test_a_store_write_failure_fails_the_run_with_the_reason(store, tmp_path):
    """Inject a real SQLite failure mid-run: the run fails loudly, the log stays a dense prefix."""
    import sqlite3

    import pytest

    from engine.errors import StoreWriteError

    run_id = await create_search_run(store, _cfg(), _problems())
    with sqlite3.connect(store.path) as c:
        c.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.seq = 40 "
            "BEGIN SELECT RAISE(ABORT, 'injected disk failure'); END"
        )
    with pytest.raises(StoreWriteError, match="injected disk failure"):
        await execute_run(store, run_id, policies=crash_policies(), sandbox=FakeSandbox())
    row = await store.run(run_id)
    assert row.status == "failed" and "injected disk failure" in row.error
    seqs = [e.seq for e in await store.events(run_id)]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < 40
