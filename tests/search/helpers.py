"""Shared fixtures for the search tests: a 'ladder' problem whose pass rate is set by the
reasoning path, scripted policies that climb or fall, and an in-process fake sandbox."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from engine.agents.scripted import ScriptedPolicy
from engine.problems.model import Problem, TestCase, TestStyle


def ladder_problem(pid: str = "ladder/0", difficulty: str = "easy") -> Problem:
    """f(x) must return x*x; a solution gets the first K public tests right (K from the path)."""
    return Problem(
        id=pid,
        dataset="synthetic",
        statement=f"Return the square of x ({pid}).",
        style=TestStyle.ASSERT,
        public_tests=[TestCase(f"assert candidate({i}) == {i * i}") for i in range(4)],
        private_tests=[TestCase(f"assert candidate({i}) == {i * i}  # PRIVATE-{pid}") for i in range(10, 14)],
        difficulty=difficulty,
        entry_point="f",
        solutions=["def f(x):\n    return x * x\n"],
    )


def ladder_code(k: int) -> str:
    """Correct on inputs below k (public tests 0..3; private 10..13 only when k > 13)."""
    return f"def f(x):\n    return x * x if x < {k} else -1\n"


def level(path: list[str], start: int = 1) -> int:
    """+1 for every 'up' step, -1 for every 'down' step."""
    k = start
    for t in path:
        k += len(re.findall(r"\bup\b", t)) - len(re.findall(r"\bdown\b", t))
    return k


def make_policy(
    name: str,
    thoughts: list[str],
    *,
    start: int = 1,
    refine_to: str = "up (refined)",
    latency_s: float = 0.0,
    sink: Any = None,
    solve_at: int | None = None,
    log: list | None = None,
):
    """A ScriptedPolicy proposing ``thoughts`` (each with the policy name appended) and writing
    ladder code at the path's level; ``solve_at``: at that level write the real solution."""

    def thoughts_fn(problem, path, k):
        if log is not None:
            log.append(("thoughts", problem, list(path)))
        return [f"{t} [{name}]" for t in thoughts[:k]]

    def solution_fn(problem, path):
        if log is not None:
            log.append(("solution", problem, list(path)))
        k = level(path, start)
        if solve_at is not None and k >= solve_at:
            return "def f(x):\n    return x * x\n"
        return ladder_code(k)

    def reflect_fn(problem, path, code, feedback, value):
        if log is not None:
            log.append(("reflect", problem, list(path), feedback))
        return f"{name} says: the step went down (value {value:.2f})"

    def refine_fn(problem, path, ill, summary, value):
        if log is not None:
            log.append(("refine", problem, list(path), summary))
        return refine_to

    return ScriptedPolicy(
        name,
        thoughts_fn=thoughts_fn,
        solution_fn=solution_fn,
        reflect_fn=reflect_fn,
        refine_fn=refine_fn,
        latency_s=latency_s,
        sink=sink,
    )


@dataclass
class _TR:
    verdict: str
    passed: bool
    error_type: str | None = None


@dataclass
class _Res:
    results: list[_TR] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return sum(r.passed for r in self.results) / len(self.results) if self.results else 0.0

    @property
    def summary(self) -> str:
        return f"{sum(r.passed for r in self.results)}/{len(self.results)} tests passed"

    def to_dict(self) -> dict:
        return {"results": [{"verdict": r.verdict} for r in self.results]}


class FakeSandbox:
    """Runs assert-style tests in-process (trusted test code only); records what it ran."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, int]] = []

    async def run(self, program: str, problem: Problem, tests: list[TestCase]) -> _Res:
        tests = list(tests)
        self.runs.append((problem.id, program, len(tests)))
        out = []
        for t in tests:
            ns: dict[str, Any] = {}
            try:
                exec(program, ns)
                ns["candidate"] = ns[problem.entry_point]
                exec(t.input, ns)
                out.append(_TR("passed", True))
            except AssertionError:
                out.append(_TR("wrong_answer", False))
            except Exception as e:  # noqa: BLE001
                out.append(_TR("runtime_error", False, type(e).__name__))
        return _Res(out)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *a):
        return None
