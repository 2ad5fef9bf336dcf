"""``bdc resume`` searches again the problems whose last attempt crashed or had every LLM call
fail (the all-calls-failed rule stopped the run after them) instead of counting them done."""

from __future__ import annotations

import pytest

from engine.agents.scripted import ScriptedPolicy
from engine.search import events as ev
from engine.search import runner
from engine.search.config import RunConfig, SearchConfig
from engine.search.runner import AgentsFailed, create_search_run, execute_run
from engine.search.tree import TreeState
from tests.search.crash_worker import crash_policies
from tests.search.helpers import FakeSandbox, ladder_problem


def _cfg() -> RunConfig:
    return RunConfig(
        dataset="synthetic",
        strategy="mcts",
        agents=[{"name": "A", "model": "scripted:broken"}],
        search=SearchConfig(rollouts=3, stop_on_solve=False),
        sequential=True,
    )


def _down(store, run_id: str) -> list[ScriptedPolicy]:
    """Agents whose every call fails the way a dead endpoint does: recorded with its error, then raised."""

    def fail(problem, path, *rest):
        store.record_llm_call(
            {
                "run_id": run_id,
                "problem_id": problem.id,
                "policy": "A",
                "model": "m",
                "prompt_hash": "h",
                "reply_hash": "",
                "error": "ConnectionError: endpoint down",
            }  # fmt: skip
        )
        raise ConnectionError("endpoint down")

    return [ScriptedPolicy(n, thoughts_fn=fail, solution_fn=fail) for n in ("A", "B")]


async def _results(store, run_id: str) -> dict[str, str]:
    return {r["problem_id"]: r["status"] for r in await store.run_problems(run_id)}


async def test_resume_retries_a_problem_whose_calls_all_failed(store) -> None:
    run_id = await create_search_run(store, _cfg(), [ladder_problem("ladder/0")])
    with pytest.raises(AgentsFailed, match="ladder/0"):
        await execute_run(store, run_id, policies=_down(store, run_id), sandbox=FakeSandbox())
    assert (await store.run(run_id)).status == "failed"
    assert (await _results(store, run_id))["ladder/0"] != "failed"  # it did finish, with PR 0
    pols = crash_policies()
    await execute_run(store, run_id, policies=pols, sandbox=FakeSandbox())
    assert (await store.run(run_id)).status == "finished"
    events = await store.events(run_id)
    finished = [e for e in events if e.kind == ev.PROBLEM_FINISHED and e.problem_id == "ladder/0"]
    assert len(finished) == 2 and finished[-1].payload.public_pass_rate > 0  # searched again, with working agents
    # the fold starts the retried problem over: its tree is the second attempt's alone
    started = [i for i, e in enumerate(events) if e.kind == ev.PROBLEM_STARTED and e.problem_id == "ladder/0"]
    retry = [e for e in events[started[-1] :] if e.problem_id == "ladder/0"]
    whole = TreeState().apply_all(events).problems["ladder/0"]
    assert whole.signature() == TreeState().apply_all(retry).problems["ladder/0"].signature()
    assert whole.finished is not None and not whole.errors


async def test_resume_retries_a_crashed_problem_and_keeps_the_finished_ones(store, monkeypatch) -> None:
    problems = [ladder_problem("ladder/0"), ladder_problem("ladder/1")]
    run_id = await create_search_run(store, _cfg(), problems)
    solve = runner.solve_problem

    async def crash_on_1(strategy, px):
        if px.problem.id == "ladder/1":
            raise RuntimeError("the search fell over")
        return await solve(strategy, px)

    monkeypatch.setattr(runner, "solve_problem", crash_on_1)
    await execute_run(store, run_id, policies=crash_policies(), sandbox=FakeSandbox())
    first = await _results(store, run_id)
    assert first["ladder/1"] == "failed" and first["ladder/0"] != "failed"
    monkeypatch.setattr(runner, "solve_problem", solve)
    n_before = await store.last_seq(run_id)
    await execute_run(store, run_id, policies=crash_policies(), sandbox=FakeSandbox())
    assert (await _results(store, run_id))["ladder/1"] not in ("failed", None)
    again = {e.problem_id for e in (await store.events(run_id))[n_before:] if e.kind == ev.PROBLEM_STARTED}
    assert again == {"ladder/1"}
