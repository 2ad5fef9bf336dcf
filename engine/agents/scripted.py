"""ScriptedPolicy: a Policy without an LLM, for tests, benchmarks and demos.

Each move is a plain function (or a table of replies) so a test can script exactly what a
policy says; an optional ``latency_s`` simulates a slow model with ``asyncio.sleep`` (which
is how concurrency benchmarks of the search measure overlap). Calls are recorded to the sink
like real ones (zero tokens and cost) so the store and the TUI see the same call stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.agents.policy import rank_priors
from engine.agents.types import CallContext, CallSink, LLMCallRecord, Solution, Thought
from engine.problems.model import Problem

ThoughtsFn = Callable[..., Any]  # (problem, path, k) -> list[str | Thought]


def _table(fn_or_table: Any) -> Callable[..., Any] | None:
    """A function as is; a list/tuple becomes a function cycling through its replies."""
    if fn_or_table is None or callable(fn_or_table):
        return fn_or_table
    replies: Sequence[Any] = list(fn_or_table)
    state = {"i": 0}

    def next_reply(*_args: Any, **_kw: Any) -> Any:
        r = replies[state["i"] % len(replies)]
        state["i"] += 1
        return r

    return next_reply


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    out = fn(*args)
    if inspect.isawaitable(out):
        out = await out
    return out


def _default_thoughts(problem: Problem, path: list[str], k: int) -> list[str]:
    depth = len(path) + 1
    return [f"step {depth}.{i + 1} for {problem.id}" for i in range(k)]


def _default_solution(problem: Problem, path: list[str]) -> str:
    name = problem.entry_point or problem.fn_name
    if name:
        return f"def {name}(*args, **kwargs):\n    return None\n"
    return "print()\n"


class ScriptedPolicy:
    """Policy-compatible: same attributes and async methods as ``engine.agents.Policy``.

    Functions receive ``(problem, path, ...)``:
    ``thoughts_fn(problem, path, k) -> list[str | Thought]``,
    ``solution_fn(problem, path) -> str | Solution``,
    ``reflect_fn(problem, path, code, feedback, value) -> str``,
    ``refine_fn(problem, path, ill_thought, summary, value) -> str``,
    ``complete_fn(messages) -> str``. Any may be async, or a list of replies to cycle through.
    """

    def __init__(
        self,
        name: str,
        thoughts_fn: Any = None,
        solution_fn: Any = None,
        reflect_fn: Any = None,
        refine_fn: Any = None,
        complete_fn: Any = None,
        latency_s: float = 0.0,
        sink: CallSink | None = None,
    ) -> None:
        self.name = name
        self.model = f"scripted/{name}"
        self.thoughts_fn = _table(thoughts_fn) or _default_thoughts
        self.solution_fn = _table(solution_fn) or _default_solution
        self.reflect_fn = _table(reflect_fn) or (
            lambda problem, path, code, feedback, value: f"{name}: the last step lowered the pass rate to {value:.2f}"
        )
        self.refine_fn = _table(refine_fn) or (lambda problem, path, ill, summary, value: f"{ill} (refined by {name})")
        self.complete_fn = _table(complete_fn) or (lambda messages: f"```python\n{_default_solution_for(messages)}```")
        self.latency_s = latency_s
        self.sink = sink
        self.calls = 0
        self.last_parse_error: str | None = None

    def __repr__(self) -> str:
        return f"ScriptedPolicy({self.name!r})"

    async def _run(self, what: str, ctx: CallContext, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        out = await _call(fn, *args)
        self.calls += 1
        if self.sink is not None:
            prompt = json.dumps(
                [what, [getattr(a, "id", a) if isinstance(a, Problem) else a for a in args]], default=str
            )
            self.sink.record_llm_call(
                LLMCallRecord(
                    run_id=ctx.run_id,
                    problem_id=ctx.problem_id,
                    node_id=ctx.node_id,
                    policy=self.name,
                    model=self.model,
                    prompt_hash=hashlib.sha256(prompt.encode()).hexdigest(),
                    reply_hash=hashlib.sha256(json.dumps(out, default=str).encode()).hexdigest(),
                    tokens_in=0,
                    tokens_out=0,
                    cost=0.0,
                    latency_s=time.perf_counter() - start,
                    retries=0,
                    cached=False,
                    error=None,
                )
            )
        return out

    async def complete(self, messages: list[dict], *, ctx: CallContext) -> str:
        return str(await self._run("complete", ctx, self.complete_fn, messages))

    async def propose_thoughts(self, problem: Problem, path: list[str], k: int, *, ctx: CallContext) -> list[Thought]:
        out = await self._run("thoughts", ctx, self.thoughts_fn, problem.prompt_view(), list(path), k)
        items = list(out or [])[:k]
        priors = rank_priors(len(items))
        return [it if isinstance(it, Thought) else Thought(str(it), p, self.name) for it, p in zip(items, priors)]

    async def write_solution(self, problem: Problem, path: list[str], *, ctx: CallContext) -> Solution:
        out = await self._run("solution", ctx, self.solution_fn, problem.prompt_view(), list(path))
        if isinstance(out, Solution):
            return out
        code = str(out or "")
        return Solution(code, self.name, None if code.strip() else "empty reply")

    async def reflect(
        self, problem: Problem, path: list[str], code: str, feedback: str, value: float, *, ctx: CallContext
    ) -> str:
        return str(
            await self._run("reflect", ctx, self.reflect_fn, problem.prompt_view(), list(path), code, feedback, value)
        )

    async def refine(
        self, problem: Problem, path: list[str], ill_thought: str, summary: str, value: float, *, ctx: CallContext
    ) -> str:
        return str(
            await self._run(
                "refine", ctx, self.refine_fn, problem.prompt_view(), list(path), ill_thought, summary, value
            )
        )


def _default_solution_for(messages: list[dict]) -> str:
    return "def solution(*args, **kwargs):\n    return None\n"
