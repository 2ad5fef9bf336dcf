from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.search.config import SearchConfig
from engine.search.context import ProblemContext
from engine.search.registry import make_strategy
from engine.search.strategy import solve_problem
from engine.search.tree import TreeState
from engine.store import Store
from tests.search.helpers import FakeSandbox, ladder_problem


@pytest.fixture
async def store(tmp_path: Path):
    s = await Store.open(tmp_path / "bdc.db")
    yield s
    await s.close()


@pytest.fixture
def search_one(store):
    """Search one problem with ``strategy`` through a ProblemContext; returns (px, events, result)."""

    async def run(
        policies: list[Any],
        cfg: SearchConfig | None = None,
        *,
        strategy: str = "mcts",
        problem=None,
        sandbox=None,
        sequential: bool = False,
    ):
        problem = problem or ladder_problem()
        run_id = await store.create_run(
            dataset="synthetic", strategy=strategy, agents=[p.name for p in policies], config={}, problems=[problem]
        )
        await store.claim_run(run_id)
        strat = make_strategy(strategy, cfg or SearchConfig())
        px = ProblemContext(
            store=store,
            run_id=run_id,
            problem=problem,
            state=TreeState(),
            policies=strat.select_policies(policies),
            sandbox=sandbox or FakeSandbox(),
            config=strat.config,
            sequential=sequential,
        )
        result = await solve_problem(strat, px)
        await store.flush()
        return px, await store.events(run_id), result

    return run
