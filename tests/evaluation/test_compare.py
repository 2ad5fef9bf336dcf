"""`bdc compare` scores a run over all its problems: unfinished ones count as not solved."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from engine.cli import cli
from engine.store import Store
from tests.search.helpers import ladder_problem


def test_compare_counts_unfinished_problems_in_its_denominators(tmp_path):
    db = tmp_path / "bdc.db"
    problems = [ladder_problem(f"ladder/{i}") for i in range(4)]
    unscorable = problems[3]
    unscorable.private_tests = []

    async def make() -> str:
        store = await Store.open(db)
        try:
            run_id = await store.create_run(
                dataset="synthetic", strategy="mcts", agents=["a"], config={}, problems=problems
            )
            store.set_problem_result(
                run_id,
                problems[0].id,
                "solved",
                {
                    "problem_id": problems[0].id,
                    "difficulty": "easy",
                    "status": "solved",
                    "public_pass_rate": 1.0,
                    "private_pass_rate": 1.0,
                    "passed_private": True,
                    "scored": True,
                },
            )
            await store.set_run_status(run_id, "interrupted")
            await store.flush()
            return run_id
        finally:
            await store.close()

    run_id = asyncio.run(make())
    out = CliRunner().invoke(cli, ["--db", str(db), "compare", run_id], env={"COLUMNS": "250"}).output
    # 1 solved of the 3 scorable problems (2 never finished): AC 33.33, not 100
    assert "33.33" in out and "100.00" not in out
    assert f"{run_id}: 3 of 4 problems unfinished, counted as not solved" in out
    assert f"{run_id}: 1 problem(s) left out of PR/AC" in out
