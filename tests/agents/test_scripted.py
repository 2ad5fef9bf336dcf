import asyncio
import time

from engine.agents import CallContext, MemorySink, ScriptedPolicy, Solution, Thought

from .helpers import make_problem

CTX = CallContext(run_id="r", problem_id="HumanEval/0")


async def test_defaults_and_recording():
    sink = MemorySink()
    p = ScriptedPolicy("s", sink=sink)
    thoughts = await p.propose_thoughts(make_problem(), [], 3, ctx=CTX)
    assert len(thoughts) == 3 and all(isinstance(t, Thought) and t.policy == "s" for t in thoughts)
    assert abs(sum(t.prior for t in thoughts) - 1) < 1e-9
    sol = await p.write_solution(make_problem(), ["a"], ctx=CTX)
    assert sol.code.startswith("def add(") and sol.parse_error is None
    assert "0.25" in await p.reflect(make_problem(), [], "code", "fb", 0.25, ctx=CTX)
    assert (await p.refine(make_problem(), [], "old", "sum", 0.0, ctx=CTX)).startswith("old")
    assert await p.complete([{"role": "user", "content": "x"}], ctx=CTX)
    assert len(sink.calls) == 5 and all(c.cost == 0 and c.model == "scripted/s" for c in sink.calls)


async def test_functions_tables_and_prompt_view():
    seen = []

    def thoughts(problem, path, k):
        seen.append(problem)
        return [f"{len(path)}-{i}" for i in range(k + 2)]  # more than k: truncated

    async def solution(problem, path):
        return Solution("print(1)", "s", None)

    p = ScriptedPolicy("s", thoughts_fn=thoughts, solution_fn=solution, reflect_fn=["r1", "r2"])
    ts = await p.propose_thoughts(make_problem(), ["x"], 2, ctx=CTX)
    assert [t.text for t in ts] == ["1-0", "1-1"]
    assert seen[0].private_tests == [] and seen[0].solutions == []
    assert (await p.write_solution(make_problem(), [], ctx=CTX)).code == "print(1)"
    got = [await p.reflect(make_problem(), [], "", "", 0.0, ctx=CTX) for _ in range(3)]
    assert got == ["r1", "r2", "r1"]


async def test_latency_overlaps_under_concurrency():
    p = ScriptedPolicy("slow", latency_s=0.2)
    start = time.perf_counter()
    await asyncio.gather(*[p.write_solution(make_problem(), [], ctx=CTX) for _ in range(10)])
    elapsed = time.perf_counter() - start
    assert elapsed < 10 * 0.2 / 2  # concurrent calls overlap (ratio, not an absolute threshold)
    assert p.calls == 10
