"""Generate with a solver and score through the sandbox.

Generation is blocking torch work, so it runs in a worker thread (``asyncio.to_thread``)
while the event loop keeps scoring the previous batch in the sandbox.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Sequence

from engine.evaluation.codegen import build_program
from engine.evaluation.tables import ProblemResult
from engine.training.examples import solve_prompt


def problem_input(problem: Any) -> str:
    """What a solver sees: the problem statement (public view) in the training format."""
    return solve_prompt(problem.statement, getattr(problem, "starter_code", "") or "")


async def evaluate(
    solver: Any,
    problems: Sequence[Any],
    *,
    sandbox: Any = None,
    batch_size: int = 1,
    workers: int = 2,
    progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[ProblemResult]:
    """Score ``solver`` on ``problems`` (private tests; a problem that is not ``scorable`` is
    recorded with ``scored=False`` and left out of PR/AC). ``sandbox`` is an open Sandbox;
    when omitted one is opened here."""
    if sandbox is None:
        from engine.sandbox import Sandbox

        async with Sandbox(workers=workers) as sb:
            return await evaluate(
                solver, problems, sandbox=sb, batch_size=batch_size, progress=progress, should_stop=should_stop
            )
    results: list[ProblemResult] = []
    pending: set[asyncio.Task] = set()

    async def score(problem: Any, reply: str) -> None:
        program = build_program(problem, reply)
        if not problem.scorable:  # no private test apart from the public ones: never scored on those
            results.append(ProblemResult(problem.id, problem.dataset, problem.difficulty, 0.0, False, program,
                                         scored=False))
            return
        tests = list(problem.private_tests)
        try:
            res = await sandbox.run(program, problem, tests)
            r = ProblemResult(problem.id, problem.dataset, problem.difficulty, float(res.pass_rate),
                              bool(res.passed), program)
        except Exception as e:  # a sandbox failure scores 0 for that problem, run continues
            r = ProblemResult(problem.id, problem.dataset, problem.difficulty, 0.0, False, program, repr(e))
        results.append(r)
        if progress:
            progress({"event": "progress", "step": len(results), "total": len(problems),
                      "problem_id": problem.id, "pass_rate": r.pass_rate, "solver": getattr(solver, "name", "")})

    for i in range(0, len(problems), batch_size):
        if should_stop and should_stop():
            break
        batch = problems[i : i + batch_size]
        replies = await asyncio.to_thread(solver.generate, [problem_input(p) for p in batch])
        for p, reply in zip(batch, replies):
            t = asyncio.create_task(score(p, reply))
            pending.add(t)
            t.add_done_callback(pending.discard)
    if pending:
        await asyncio.gather(*pending)
    order = {p.id: i for i, p in enumerate(problems)}
    results.sort(key=lambda r: order.get(r.problem_id, 0))
    return results
