"""Store.sandbox_runs: the reader for what record_sandbox_run wrote (the TUI inspector uses it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.store import Store


async def test_sandbox_runs_filters_by_problem_and_node_and_decodes_verdicts(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        tests_a = [{"verdict": "passed", "time_s": 0.1}, {"verdict": "failed", "expected": "3", "got": "4"}]
        store.record_sandbox_run(run_id="r1", problem_id="P/0", node_id="1", policy="a", result={"results": tests_a})
        store.record_sandbox_run(
            run_id="r1", problem_id="P/0", node_id="2", policy="b", result={"results": [{"verdict": "passed"}]}
        )
        store.record_sandbox_run(run_id="r1", problem_id="P/1", node_id="1", policy="a", result={"results": []})
        store.record_sandbox_run(run_id="r2", problem_id="P/0", node_id="1", policy="a", result={"results": []})
        await store.flush()

        rows = await store.sandbox_runs("r1", problem_id="P/0", node_id="1")
        assert len(rows) == 1
        row = rows[0]
        assert (row["policy"], row["passed"], row["total"], row["pass_rate"]) == ("a", 1, 2, 0.5)
        assert row["verdicts"] == tests_a
        assert [r["node_id"] for r in await store.sandbox_runs("r1", problem_id="P/0")] == ["1", "2"]
        assert len(await store.sandbox_runs("r1")) == 3
        assert await store.sandbox_runs("r1", problem_id="P/9") == []
    finally:
        await store.close()


async def test_sandbox_runs_reads_a_corrupt_verdicts_column_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    await store.close()
    with sqlite3.connect(path) as c:
        c.execute(
            "INSERT INTO sandbox_runs (run_id, problem_id, node_id, policy, passed, total, pass_rate, verdicts, ts) "
            "VALUES ('r', 'p', '1', 'a', 0, 1, 0.0, 'not json', 0)"
        )
    store = await Store.open(path, readonly=True)
    try:
        rows = await store.sandbox_runs("r", problem_id="p", node_id="1")
        assert rows[0]["verdicts"] == []
    finally:
        await store.close()
