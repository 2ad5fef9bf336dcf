"""The Strategy interface and the per-problem driver every strategy shares.

A strategy only decides *what to do next* on a problem's tree (``search``); the driver
around it does what must be identical for a fair comparison: the problem's opening events,
the root simulation (which is exactly the zero-shot attempt of every policy), budget
handling, choosing the final answer on public tests only, scoring it on private tests (only
when the problem has private tests apart from its public ones), and
the ``problem_finished`` record with calls, tokens, cost and wall time.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

from engine.agents.types import BudgetExceeded
from engine.problems.model import Problem
from engine.search import events as ev
from engine.search.config import SearchConfig
from engine.search.context import ProblemContext


class Strategy(ABC):
    """One search method. Subclasses implement ``search``; everything else is shared."""

    name: str = ""
    description: str = ""
    single_policy: bool = False  # the paper's "Single" rows: the first agent only

    def __init__(self, config: SearchConfig) -> None:
        self.config = config

    def select_policies(self, policies: list[Any]) -> list[Any]:
        n = 1 if self.single_policy else self.config.max_policies
        return list(policies[:n]) if n else list(policies)

    @abstractmethod
    async def search(self, px: ProblemContext) -> None:
        """Grow ``px.tree`` through ``px`` after the root was simulated (stop on solve is checked by the caller)."""

    def should_stop(self, px: ProblemContext) -> bool:
        return self.config.stop_on_solve and px.tree.solved_by is not None


async def solve_problem(strategy: Strategy, px: ProblemContext) -> dict[str, Any]:
    """Search one problem with ``strategy`` and score the chosen answer; returns the problem's result."""
    p = px.problem
    px.emit(
        ev.PROBLEM_STARTED,
        ev.ProblemStarted(
            difficulty=p.difficulty,
            statement_preview=p.statement.strip()[:200],
            public_tests=len(p.public_tests),
            private_tests=len(p.private_tests),
            strategy=strategy.name,
        ),
    )
    px.emit(ev.ROOT, ev.Root(node="0", statement_preview=p.statement.strip()[:200]), node_id="0")
    status = "finished"
    try:
        await px.simulate(["0"], 0)
        root = px.tree.nodes["0"]
        px.backup([], px.value(root), 0, leaves={"0": px.value(root)})
        if not strategy.should_stop(px):
            await strategy.search(px)
    except BudgetExceeded as e:
        px.emit(ev.BUDGET_EXHAUSTED, ev.BudgetExhausted(reason=str(e)))
        status = "budget"
    return await finish_problem(px, status)


async def finish_problem(px: ProblemContext, status: str) -> dict[str, Any]:
    """Choose the answer on public tests, score it on private tests, emit ``problem_finished``."""
    tree, p = px.tree, px.problem
    # a solution that passed every public test is the answer, even if its node changed since
    if tree.solution is not None:
        node_id, sol = tree.solved_by, tree.solution
    else:
        best = tree.best_node()
        node_id, sol = (best.id, best.best_solution()) if best is not None else (None, None)
    code = sol.get("code", "") if sol else ""
    public = float(sol.get("pass_rate", 0.0)) if sol else 0.0
    # never scored on the tests that guided it: a problem with no private test apart from its
    # public ones is searched but left out of PR/AC (``scored`` False, no private figures)
    scored = p.scorable
    private, passed = (0.0, False) if scored else (None, None)
    if code.strip() and scored:
        res = await px.run_tests(code, p.private_tests, node_id=node_id, policy=sol.get("policy"))
        private = res["pass_rate"]
        passed = res["total"] > 0 and res["passed"] == res["total"]
    calls = tokens = 0
    cost = 0.0
    if px.store is not None:
        await px.store.flush()
        for c in await px.store.llm_calls(px.run_id, problem_id=p.id):
            if not c.get("cached"):
                calls += 1
            tokens += int(c.get("tokens_in") or 0) + int(c.get("tokens_out") or 0)
            cost += float(c.get("cost") or 0.0)
    if tree.solved_by is not None and status == "finished":
        status = "solved"
    result = {
        "problem_id": p.id,
        "node": node_id,
        "policy": sol.get("policy") if sol else None,
        "code": code,
        "public_pass_rate": public,
        "private_pass_rate": private,
        "scored": scored,
        "passed_private": passed,
        "rollouts": tree.rollouts_done,
        "calls": calls,
        "tokens": tokens,
        "cost": cost,
        "wall_s": round(time.monotonic() - px.started, 3),
        "status": status,
        "difficulty": p.difficulty,
        "nodes": len(tree.nodes),
        "prunes": tree.prunes,
        "refinements": tree.refinements,
    }
    px.emit(ev.PROBLEM_FINISHED, result, node_id=result["node"])
    return result


def failed_result(problem: Problem, error: str, rollouts: int, wall_s: float) -> dict[str, Any]:
    """The ``problem_finished`` result of a problem whose search crashed (both backends record it).
    An unscorable problem stays out of PR/AC even then: its private figures are None."""
    return {
        "status": "failed",
        "error": error,
        "difficulty": problem.difficulty,
        "problem_id": problem.id,
        "scored": problem.scorable,
        "public_pass_rate": 0.0,
        "private_pass_rate": 0.0 if problem.scorable else None,
        "passed_private": False if problem.scorable else None,
        "node": None,
        "policy": None,
        "code": "",
        "rollouts": rollouts,
        "calls": 0,
        "tokens": 0,
        "cost": 0.0,
        "wall_s": round(wall_s, 3),
    }
