"""Concurrency without timing thresholds: calls overlap in the engine, never in sequential
mode, the LLM-in-flight limit holds, and both modes build identical trees."""

from __future__ import annotations

import asyncio

from engine.agents.scripted import ScriptedPolicy
from engine.search.config import RunConfig, SearchConfig
from engine.search.runner import create_search_run, execute_run
from engine.search.tree import TreeState
from tests.search.helpers import FakeSandbox, ladder_code, ladder_problem, level


class Meter:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def hold(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(0.005)
        self.now -= 1


def metered_policies(meter: Meter) -> list[ScriptedPolicy]:
    def make(name: str, thoughts: list[str]) -> ScriptedPolicy:
        async def th(problem, path, k):
            await meter.hold()
            return [f"{t} [{name}]" for t in thoughts[:k]]

        async def sol(problem, path):
            await meter.hold()
            return ladder_code(level(path))

        async def refl(problem, path, code, fb, v):
            await meter.hold()
            return f"{name} reflects"

        async def ref(problem, path, ill, s, v):
            await meter.hold()
            return "same (refined)"

        return ScriptedPolicy(name, thoughts_fn=th, solution_fn=sol, reflect_fn=refl, refine_fn=ref)

    return [make("A", ["up", "down", "same"]), make("B", ["same", "up", "down"])]


async def _run(store, **kw):
    meter = Meter()
    cfg = RunConfig(
        dataset="synthetic",
        strategy="mcts",
        agents=[{"name": "A", "model": "scripted:broken"}],
        search=SearchConfig(rollouts=3, stop_on_solve=False),
        **kw,
    )
    run_id = await create_search_run(store, cfg, [ladder_problem(f"l/{i}") for i in range(3)])
    await execute_run(store, run_id, policies=metered_policies(meter), sandbox=FakeSandbox())
    state = TreeState().apply_all(await store.events(run_id))
    return meter.peak, {pid: t.signature() for pid, t in state.problems.items()}


async def test_engine_overlaps_calls_and_sequential_does_not(store):
    peak_c, trees_c = await _run(store, llm_concurrency=64)
    peak_s, trees_s = await _run(store, sequential=True)
    peak_l, trees_l = await _run(store, llm_concurrency=3)
    assert peak_s == 1
    assert peak_c > 6  # several problems x several children x both policies at once
    assert peak_l == 3
    assert trees_c == trees_s == trees_l
