"""Per-call-kind token budgets and stop sequences (issue 16): what each call asks for, that the
local engine honours ``stop`` (both batchers), and that the budgets are configurable and recorded."""

from __future__ import annotations

import pytest

from engine.agents import CallContext, LLMClient, MemorySink, Policy, PolicySpec
from engine.agents.local.batcher import DynamicBatcher
from engine.agents.local.loader import load_model
from engine.agents.local.provider import LocalEngine
from engine.agents.parsing import parse_thoughts
from engine.agents.policy import close_thought_list
from engine.errors import ConfigError
from engine.search.config import RunConfig, SearchConfig, call_budget_settings

from .helpers import make_problem
from .test_policy_llm import Recorder

CTX = CallContext(run_id="r1", problem_id="HumanEval/0", node_id="n1")


def spec(reply: str, max_tokens: int = 768) -> PolicySpec:
    return PolicySpec(name="gpt", model="openai/gpt-4o-mini", max_tokens=max_tokens, extra={"mock_response": reply})


async def test_each_call_kind_sends_its_own_budget_and_stops():
    budgets = SearchConfig().call_budgets()
    problem = make_problem()
    sent = {}
    for kind, reply, call in [
        ("thought", '["a", "b"]', lambda p: p.propose_thoughts(problem, [], 3, ctx=CTX)),
        (
            "solution",
            "```python\ndef add(a, b):\n    return a + b\n```",
            lambda p: p.write_solution(problem, [], ctx=CTX),
        ),
        ("reflection", "wrong sign", lambda p: p.reflect(problem, [], "x", "fail", 0.0, ctx=CTX)),
        ("refinement", "add them", lambda p: p.refine(problem, [], "subtract", "wrong sign", 0.0, ctx=CTX)),
    ]:
        rec = Recorder()
        await call(Policy(spec(reply), LLMClient(MemorySink(), completion_fn=rec), budgets))
        sent[kind] = (rec.calls[0]["max_tokens"], rec.calls[0].get("stop"))
    assert sent["thought"] == (128, ['"]'])
    assert sent["solution"] == (512, None)
    assert sent["reflection"] == (192, None)
    assert sent["refinement"] == (96, ["\n\n"])


async def test_agent_max_tokens_stays_the_ceiling_and_no_budgets_keeps_the_old_call():
    rec = Recorder()
    pol = Policy(
        spec("```python\nx = 1\n```", max_tokens=300),
        LLMClient(MemorySink(), completion_fn=rec),
        SearchConfig().call_budgets(),
    )
    await pol.write_solution(make_problem(), [], ctx=CTX)
    assert rec.calls[0]["max_tokens"] == 300
    rec = Recorder()
    await Policy(spec('["a"]'), LLMClient(MemorySink(), completion_fn=rec)).propose_thoughts(
        make_problem(), [], 2, ctx=CTX
    )
    assert rec.calls[0]["max_tokens"] == 768 and "stop" not in rec.calls[0]


@pytest.mark.parametrize(
    "cut, expected",
    [
        ('["Add the numbers.", "Handle negatives', ["Add the numbers.", "Handle negatives"]),  # at the stop '"]'
        ('["Add the numbers.", "Handle neg', ["Add the numbers.", "Handle neg"]),  # at the token budget
        ('["Add the numbers.", ', ["Add the numbers."]),
        ('["Add the numbers."]', ["Add the numbers."]),
        ("1. Add the numbers.", ["Add the numbers."]),
    ],
)
def test_a_cut_thought_list_still_parses(cut, expected):
    assert parse_thoughts(close_thought_list(cut), 3)[0] == expected


def test_budgets_are_validated_configurable_and_recorded(tmp_path):
    with pytest.raises(ConfigError, match="thought_tokens"):
        SearchConfig(thought_tokens=0)
    with pytest.raises(ConfigError, match="solution_stop"):
        SearchConfig(solution_stop="```")  # type: ignore[arg-type]
    conf = tmp_path / "config.toml"
    conf.write_text('[search]\nthought_tokens = 64\nsolution_stop = ["\\n```"]\n')
    settings = call_budget_settings(str(conf), thought_tokens=None, solution_tokens=300)
    assert settings == {"thought_tokens": 64, "solution_stop": ["\n```"], "solution_tokens": 300}
    cfg = RunConfig(dataset="humaneval", search=SearchConfig(**settings))
    stored = RunConfig.from_dict(cfg.to_dict())  # what run_started and runs.config hold
    assert stored.search.call_budgets()["thought"] == {"max_tokens": 64, "stop": ['"]']}
    assert stored.search.call_budgets()["solution"] == {"max_tokens": 300, "stop": ["\n```"]}
    conf.write_text('[search]\nthought_tokens = "many"\n')
    with pytest.raises(ConfigError, match="thought_tokens"):
        call_budget_settings(str(conf))


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(tiny_llama)


@pytest.mark.parametrize("batching", ["dynamic", "continuous"])
def test_local_engine_stops_at_a_stop_sequence_and_reports_tokens(tiny, batching):
    model, tok = tiny
    engine = LocalEngine(model, tok, batching=batching)
    try:
        msgs = [{"role": "user", "content": "write something long"}]
        full = engine.request(msgs, max_tokens=40).result(timeout=120)
        assert len(full.text) >= 8, "the tiny model's greedy reply is too short to cut"
        stop = full.text[4:7]
        counts: list[int] = []
        cut = engine.request(msgs, max_tokens=40, stop=[stop], on_tokens=counts.append).result(timeout=120)
        assert cut.text == full.text[: full.text.index(stop)]
        assert cut.finish_reason == "stop" and len(cut.token_ids) < len(full.token_ids)
        assert counts and counts == sorted(counts) and counts[-1] == len(cut.token_ids)
    finally:
        engine.close()


def test_dynamic_batcher_rows_stop_on_their_own(tiny):
    model, tok = tiny
    engine = LocalEngine(model, tok, batching="dynamic")
    assert isinstance(engine.batcher, DynamicBatcher)
    try:
        msgs = [{"role": "user", "content": "write something long"}]
        full = engine.request(msgs, max_tokens=40).result(timeout=120)
        futs = [engine.request(msgs, max_tokens=40, stop=[full.text[4:7]]), engine.request(msgs, max_tokens=40)]
        cut, whole = (f.result(timeout=120) for f in futs)
        assert whole.text == full.text and len(cut.text) < len(full.text)
    finally:
        engine.close()


def test_cli_flags_reach_the_stored_run_config_and_run_started(tmp_path, monkeypatch):
    import asyncio

    from click.testing import CliRunner

    from engine.cli import cli
    from engine.search import events as ev
    from engine.store import Store

    conf = tmp_path / "config.toml"
    conf.write_text("[search]\nreflection_tokens = 150\n")
    monkeypatch.setenv("BDC_CONFIG", str(conf))
    db = str(tmp_path / "cli.db")
    r = CliRunner().invoke(
        cli,
        [
            "--db",
            db,
            "search",
            "--dataset",
            "humaneval",
            "--limit",
            "1",
            "--rollouts",
            "1",
            "--agents",
            "good=scripted:canonical",
            "--thought-tokens",
            "80",
            "--quiet",
        ],
    )
    assert r.exit_code == 0, r.output

    async def stored():
        store = await Store.open(db)
        try:
            run = (await store.runs())[0]
            started = [e for e in await store.events(run.id) if e.kind == ev.RUN_STARTED]
            return run.config["search"], started[0].payload.config["search"]
        finally:
            await store.close()

    for search in asyncio.run(stored()):
        assert search["thought_tokens"] == 80 and search["reflection_tokens"] == 150
        assert search["solution_tokens"] == 512 and search["thought_stop"] == ['"]']
