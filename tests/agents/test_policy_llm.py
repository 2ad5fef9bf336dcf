"""Policies over litellm with mock_response and injected failures: cache, budget, retries, errors."""

from __future__ import annotations

import asyncio

import pytest

from engine.agents import (
    Budget,
    BudgetExceeded,
    CallContext,
    LLMClient,
    MemorySink,
    Policy,
    PolicyError,
    PolicySpec,
    cache_key,
)
from engine.agents.llm import import_litellm
from engine.errors import ConfigError

from .helpers import make_problem

CTX = CallContext(run_id="r1", problem_id="HumanEval/0", node_id="n1")


def mock_spec(reply: str, name: str = "gpt") -> PolicySpec:
    return PolicySpec(name=name, model="openai/gpt-4o-mini", extra={"mock_response": reply})


class Recorder:
    """A completion_fn wrapper counting calls and capturing messages."""

    def __init__(self, fn=None):
        self.calls = []
        self.fn = fn or import_litellm().acompletion

    async def __call__(self, **kw):
        self.calls.append(kw)
        return await self.fn(**kw)


async def test_propose_thoughts_with_mock_response_and_recording():
    sink = MemorySink()
    rec = Recorder()
    pol = Policy(
        mock_spec('["Add the numbers.", "Handle negatives.", "Use sum()."]'), LLMClient(sink, completion_fn=rec)
    )
    thoughts = await pol.propose_thoughts(make_problem(), [], 3, ctx=CTX)
    assert [t.text for t in thoughts] == ["Add the numbers.", "Handle negatives.", "Use sum()."]
    assert all(t.policy == "gpt" for t in thoughts)
    assert thoughts[0].prior > thoughts[1].prior > thoughts[2].prior
    assert abs(sum(t.prior for t in thoughts) - 1) < 1e-9
    (row,) = sink.calls
    assert row.run_id == "r1" and row.node_id == "n1" and row.policy == "gpt" and not row.cached
    assert row.tokens_in > 0 and row.tokens_out > 0 and row.cost > 0 and row.error is None
    assert set(row.to_row()) >= {"prompt_hash", "reply_hash", "latency_s", "retries", "cached", "error"}
    # the policy never sees private tests or reference solutions
    prompt = str(rec.calls[0]["messages"])
    assert "assert add(1, 2) == 3" in prompt and "SECRET" not in prompt and "REFERENCE" not in prompt


async def test_write_solution_reflect_refine():
    problem = make_problem()
    sol = await Policy(mock_spec("```python\ndef add(a, b):\n    return a + b\n```")).write_solution(
        problem, ["x"], ctx=CTX
    )
    assert sol.code.startswith("def add") and sol.parse_error is None and sol.policy == "gpt"
    bad = await Policy(mock_spec("no idea")).write_solution(problem, [], ctx=CTX)
    assert bad.code == "" and bad.parse_error
    summary = await Policy(mock_spec("Summary: it subtracts instead of adding")).reflect(
        problem, ["x"], "def add(a,b): return a-b", "assert failed", 0.0, ctx=CTX
    )
    assert summary == "it subtracts instead of adding"
    new = await Policy(mock_spec("1. Return a + b directly.")).refine(
        problem, [], "Return a - b", summary, 0.0, ctx=CTX
    )
    assert new == "Return a + b directly."


async def test_cache_hit_makes_no_second_call_and_sample_index_is_part_of_key():
    sink = MemorySink()
    rec = Recorder()
    client = LLMClient(sink, completion_fn=rec)
    pol = Policy(mock_spec("hello"), client)
    msgs = [{"role": "user", "content": "hi"}]
    assert await pol.complete(msgs, ctx=CTX) == "hello"
    assert await pol.complete(msgs, ctx=CTX) == "hello"
    assert len(rec.calls) == 1
    assert [c.cached for c in sink.calls] == [False, True]
    assert sink.calls[1].cost == 0
    await pol.complete(msgs, ctx=CallContext(run_id="r1", sample_index=1))
    assert len(rec.calls) == 2
    # a fresh client on the same sink (a resumed run) replays from the cache
    rec2 = Recorder()
    await Policy(mock_spec("hello"), LLMClient(sink, completion_fn=rec2)).complete(msgs, ctx=CTX)
    assert rec2.calls == []


def test_cache_key_ignores_secrets():
    m = [{"role": "user", "content": "x"}]
    assert cache_key("a/b", m, {"api_key": "1"}, 0) == cache_key("a/b", m, {"api_key": "2"}, 0)
    assert cache_key("a/b", m, {"temperature": 0}, 0) != cache_key("a/b", m, {"temperature": 1}, 0)
    assert cache_key("a/b", m, {}, 0) != cache_key("a/b", m, {}, 1)


async def test_concurrent_identical_calls_share_one_request():
    rec = Recorder()
    client = LLMClient(MemorySink(), completion_fn=rec)
    pol = Policy(mock_spec("same"), client)
    msgs = [{"role": "user", "content": "hi"}]
    out = await asyncio.gather(*[pol.complete(msgs, ctx=CTX) for _ in range(5)])
    assert out == ["same"] * 5 and len(rec.calls) == 1


async def test_budget_stops_cleanly_and_is_shared():
    budget = Budget(max_calls=3)
    client = LLMClient(MemorySink(), budget)
    a, b = Policy(mock_spec("x", "a"), client), Policy(mock_spec("y", "b"), client)
    for i in range(3):
        await (a if i % 2 else b).complete([{"role": "user", "content": str(i)}], ctx=CTX)
    with pytest.raises(BudgetExceeded) as ei:
        await a.complete([{"role": "user", "content": "more"}], ctx=CTX)
    assert ei.value.what == "calls" and budget.exhausted
    # cached replies are free even when the budget is spent
    assert await b.complete([{"role": "user", "content": "0"}], ctx=CTX) == "y"


async def test_token_and_cost_budgets():
    budget = Budget(max_tokens=25)
    client = LLMClient(MemorySink(), budget)
    pol = Policy(mock_spec("x"), client)
    await pol.complete([{"role": "user", "content": "1"}], ctx=CTX)  # mock usage: 30 tokens
    with pytest.raises(BudgetExceeded, match="tokens"):
        await pol.complete([{"role": "user", "content": "2"}], ctx=CTX)
    budget = Budget(max_cost_usd=1e-9)
    pol = Policy(mock_spec("x"), LLMClient(MemorySink(), budget))
    await pol.complete([{"role": "user", "content": "1"}], ctx=CTX)
    assert budget.cost_usd > 0
    with pytest.raises(BudgetExceeded, match="cost"):
        await pol.complete([{"role": "user", "content": "2"}], ctx=CTX)


async def test_retries_with_backoff_on_rate_limit_then_success():
    litellm = import_litellm()
    attempts = {"n": 0}

    async def flaky(**kw):
        attempts["n"] += 1
        if attempts["n"] <= 2:
            kw["mock_response"] = litellm.RateLimitError(
                message="slow down", llm_provider="openai", model="gpt-4o-mini"
            )
        return await litellm.acompletion(**kw)

    sink = MemorySink()
    client = LLMClient(sink, completion_fn=flaky, backoff_s=0.0)
    assert await Policy(mock_spec("ok"), client).complete([{"role": "user", "content": "hi"}], ctx=CTX) == "ok"
    assert attempts["n"] == 3 and sink.calls[-1].retries == 2 and sink.calls[-1].error is None


async def test_retries_exhausted_on_5xx_records_error():
    litellm = import_litellm()

    async def down(**kw):
        raise litellm.ServiceUnavailableError(message="503", llm_provider="openai", model="gpt-4o-mini")

    sink = MemorySink()
    client = LLMClient(sink, completion_fn=down, backoff_s=0.0, max_retries=2)
    with pytest.raises(PolicyError) as ei:
        await Policy(mock_spec("ok"), client).complete([{"role": "user", "content": "hi"}], ctx=CTX)
    assert ei.value.kind == "server_error" and ei.value.policy == "gpt"
    assert sink.calls[-1].retries == 2 and sink.calls[-1].error.startswith("server_error")


async def test_unknown_model_string_is_a_clear_error():
    sink = MemorySink()
    pol = Policy(PolicySpec("bad", "no-such-provider-model"), LLMClient(sink, backoff_s=0.0))
    with pytest.raises(ConfigError) as ei:
        await pol.complete([{"role": "user", "content": "hi"}], ctx=CTX)
    assert ei.value.kind == "unknown_model" and "check the model string" in str(ei.value)
    assert "\n" not in str(ei.value).split(" -- ")[0]
    assert sink.calls[-1].error.startswith("unknown_model") and sink.calls[-1].retries == 0


async def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    pol = Policy(PolicySpec("gpt", "openai/gpt-4o-mini"), LLMClient(MemorySink(), backoff_s=0.0))
    with pytest.raises(PolicyError) as ei:
        await pol.complete([{"role": "user", "content": "hi"}], ctx=CTX)
    assert ei.value.kind == "missing_key" and "OPENAI_API_KEY" in str(ei.value)


async def test_unreachable_server_is_retried_then_reported():
    spec = PolicySpec("vllm", "openai/some-model", extra={"api_base": "http://127.0.0.1:9/v1", "api_key": "sk-x"})
    sink = MemorySink()
    with pytest.raises(PolicyError) as ei:
        await Policy(spec, LLMClient(sink, backoff_s=0.0, max_retries=1, timeout_s=5)).complete(
            [{"role": "user", "content": "hi"}], ctx=CTX
        )
    assert ei.value.kind == "unreachable" and "api_base" in str(ei.value)
    assert sink.calls[-1].retries == 1


async def test_run_goes_on_with_remaining_policies():
    """The pattern the search uses: gather with return_exceptions, keep the policies that answered."""
    client = LLMClient(MemorySink(), backoff_s=0.0)
    good = Policy(mock_spec('["a", "b"]', "good"), client)
    bad = Policy(PolicySpec("bad", "nonsense"), client)
    res = await asyncio.gather(
        *[p.propose_thoughts(make_problem(), [], 2, ctx=CTX) for p in (good, bad)], return_exceptions=True
    )
    assert [t.text for t in res[0]] == ["a", "b"]
    assert isinstance(res[1], PolicyError) and res[1].policy == "bad"
