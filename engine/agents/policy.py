"""A Policy: one LLM "of some wisdom" with the four moves the MC-Tree-Of-Agents search needs.

Policies see only ``problem.prompt_view()`` (public tests); the prompt builders in
``engine.agents.prompts`` enforce it. Every call goes through the shared LLMClient (cache,
budget, retries, recording). Unusable replies do not raise: they come back empty or with a
``parse_error``, so the search can carry on.
"""

from __future__ import annotations

from dataclasses import replace

from engine.agents import prompts
from engine.agents.llm import LLMClient
from engine.agents.parsing import extract_code, parse_summary, parse_thoughts
from engine.agents.types import CallContext, PolicySpec, Solution, Thought
from engine.problems.model import Problem


def rank_priors(n: int) -> list[float]:
    """P(a|S) from reply order: weights 1/(rank+1), normalised to sum to 1.

    Policies are asked to list their thoughts best first; a rank prior keeps that signal
    without logprobs (which most hosted chat APIs do not return for whole list items).
    """
    if n <= 0:
        return []
    w = [1.0 / (i + 1) for i in range(n)]
    s = sum(w)
    return [x / s for x in w]


def close_thought_list(text: str) -> str:
    """A JSON list of thoughts cut at its stop sequence (``"]``, which the reply leaves out) or at
    its token budget is closed again, so the thoughts written so far still parse."""
    body = text.rstrip()
    if not body.lstrip().startswith("[") or body.endswith("]"):
        return text
    if body.count('"') % 2 == 1:  # cut inside a string
        body += '"'
    return body.rstrip(", \n") + "]"


class Policy:
    """A named LLM policy built from a PolicySpec and a shared LLMClient."""

    def __init__(
        self, spec: PolicySpec, client: LLMClient | None = None, budgets: dict[str, dict] | None = None
    ) -> None:
        self.spec = spec
        self.client = client if client is not None else LLMClient()
        # {kind: {"max_tokens": n, "stop": [...]}} (SearchConfig.call_budgets); a kind left out
        # keeps the spec's own max_tokens and no stop sequence (the behaviour before budgets)
        self.budgets = dict(budgets or {})
        self.last_parse_error: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def model(self) -> str:
        return self.spec.model

    def __repr__(self) -> str:
        return f"Policy({self.name!r}, {self.model!r})"

    def spec_for(self, kind: str) -> PolicySpec:
        """The spec of one call kind: its token budget (capped by the agent's own ``max_tokens``)
        and stop sequences. Both are generation parameters, so they are part of the cache key."""
        budget = self.budgets.get(kind)
        if not budget:
            return self.spec
        extra = dict(self.spec.extra)
        if budget.get("stop"):
            extra["stop"] = list(budget["stop"])
        limit = int(budget.get("max_tokens") or self.spec.max_tokens)
        return replace(self.spec, max_tokens=min(limit, self.spec.max_tokens), extra=extra)

    async def complete(self, messages: list[dict], *, ctx: CallContext, kind: str = "solution") -> str:
        """Raw reply text (baselines such as zero-shot and Reflexion build their own messages
        and write solutions, hence the default kind)."""
        reply = await self.client.complete(self.spec_for(kind), messages, ctx=ctx, policy=self.name, kind=kind)
        return reply.text

    async def propose_thoughts(self, problem: Problem, path: list[str], k: int, *, ctx: CallContext) -> list[Thought]:
        """Problem-to-thought: up to k next steps with rank priors (empty on an empty reply)."""
        text = await self.complete(prompts.propose_thoughts(problem.prompt_view(), path, k), ctx=ctx, kind="thought")
        items, err = parse_thoughts(close_thought_list(text), k)
        self.last_parse_error = err
        # drop duplicates, keep order
        seen: set[str] = set()
        uniq = [t for t in items if not (t.lower() in seen or seen.add(t.lower()))]
        return [Thought(t, p, self.name) for t, p in zip(uniq, rank_priors(len(uniq)))]

    async def write_solution(self, problem: Problem, path: list[str], *, ctx: CallContext) -> Solution:
        """Thought-to-solution: the full program; ``parse_error`` set when no usable code came back."""
        view = problem.prompt_view()
        text = await self.complete(prompts.write_solution(view, path), ctx=ctx)
        code, err = extract_code(text, view.entry_point or view.fn_name)
        self.last_parse_error = err
        return Solution(code, self.name, err)

    async def reflect(
        self, problem: Problem, path: list[str], code: str, feedback: str, value: float, *, ctx: CallContext
    ) -> str:
        """Summarise why an ill node (written by another policy) failed."""
        text = await self.complete(
            prompts.reflect(problem.prompt_view(), path, code, feedback, value), ctx=ctx, kind="reflection"
        )
        return parse_summary(text)

    async def refine(
        self, problem: Problem, path: list[str], ill_thought: str, summary: str, value: float, *, ctx: CallContext
    ) -> str:
        """Rewrite the ill thought from a reflection summary; one step of prose."""
        text = await self.complete(
            prompts.refine(problem.prompt_view(), path, ill_thought, summary, value), ctx=ctx, kind="refinement"
        )
        step = parse_summary(text)
        if step[:1] in "1-*[":  # the model answered with a list anyway: keep its first item
            items, _ = parse_thoughts(step, 1)
            if items:
                return items[0]
        return step
