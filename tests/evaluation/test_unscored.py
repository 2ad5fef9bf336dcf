"""A problem without a private test apart from its public ones is searched, never scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.evaluation.tables import ProblemResult, summarize, unscored_note
from engine.search.config import SearchConfig
from engine.search.context import ProblemContext
from engine.search.metrics import summarize as search_summary
from engine.search.registry import make_strategy
from engine.search.strategy import solve_problem
from engine.search.tree import TreeState
from engine.store import Store
from tests.search.helpers import FakeSandbox, ladder_problem, make_policy


@pytest.fixture
async def store(tmp_path: Path):
    s = await Store.open(tmp_path / "bdc.db")
    yield s
    await s.close()


async def _solve(store, problem, sandbox):
    run_id = await store.create_run(
        dataset="synthetic", strategy="zero-shot", agents=["p"], config={}, problems=[problem]
    )
    await store.claim_run(run_id)
    strat = make_strategy("zero-shot", SearchConfig(rollouts=1, thoughts_per_policy=1))
    px = ProblemContext(
        store=store,
        run_id=run_id,
        problem=problem,
        state=TreeState(),
        policies=[make_policy("p", ["up"], solve_at=1)],
        sandbox=sandbox,
        config=strat.config,
    )
    return await solve_problem(strat, px)


async def test_search_never_scores_on_the_tests_that_guided_it(store):
    sb = FakeSandbox()
    guided_only = ladder_problem("ladder/public-only")
    guided_only.private_tests = []
    result = await _solve(store, guided_only, sb)
    assert result["status"] == "solved" and result["public_pass_rate"] == 1.0
    assert result["scored"] is False and result["private_pass_rate"] is None and result["passed_private"] is None
    # the public tests ran (to guide), nothing ran a second time to score
    assert [n for _, _, n in sb.runs] == [len(guided_only.public_tests)]

    scored = await _solve(store, ladder_problem("ladder/ok"), FakeSandbox())
    assert scored["scored"] is True and scored["passed_private"] is True
    m = search_summary([result, scored])["overall"]
    assert m["n"] == 1 and m["ac"] == 1.0 and m["unscored"] == 1 and m["unscored_ids"] == ["ladder/public-only"]


def test_eval_tables_leave_unscored_problems_out_and_say_so():
    rs = [
        ProblemResult("a", "mbpp", "all", 1.0, True),
        ProblemResult("b", "mbpp", "all", 0.0, False),
        ProblemResult("c", "mbpp", "all", 0.0, False, scored=False),
    ]
    s = summarize(rs)
    assert s["mbpp"]["overall"] == {"pr": 50.0, "ac": 50.0, "n": 2, "unscored": 1, "errors": 0}
    assert unscored_note({"base": s}) == "left out of PR/AC (no private tests apart from the public ones): mbpp: 1"


async def test_eval_runner_marks_unscorable_problems(store):
    from engine.evaluation.runner import evaluate, problem_input

    p = ladder_problem("ladder/public-only")
    p.private_tests = []

    class Solver:
        name = "s"

        def generate(self, inputs):
            return ["def f(x):\n    return x * x\n" for _ in inputs]

    sb = FakeSandbox()
    (r,) = await evaluate(Solver(), [p], sandbox=sb)
    assert r.scored is False and not r.passed and sb.runs == [] and problem_input(p)
