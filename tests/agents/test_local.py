"""The local provider on a tiny random Llama: the real transformers + litellm code path."""

from __future__ import annotations

import asyncio
import threading

import pytest

from engine.agents import CallContext, LLMClient, MemorySink, Policy, PolicyError, PolicySpec
from engine.agents.local.batcher import DynamicBatcher
from engine.agents.local.loader import load_model, resolve_source
from engine.agents.local.provider import LocalEngine, get_engine, set_engine
from engine.agents.local.rows import GenRequest

from .helpers import make_problem


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(tiny_llama)


PROMPTS = [
    [{"role": "user", "content": "a"}],
    [{"role": "user", "content": "a much longer prompt so padding matters " * 3}],
    [{"role": "system", "content": "sys"}, {"role": "user", "content": "third"}],
    [{"role": "user", "content": "4"}],
]


async def test_batcher_gives_each_caller_its_own_completion(tiny):
    model, tok = tiny
    engine = LocalEngine(model, tok, max_batch=8, wait_s=0.05)
    try:
        # reference: one request at a time
        solo = []
        for i, p in enumerate(PROMPTS):
            solo.append(await engine.agenerate(p, max_tokens=6 + i))
        assert all(r.batch_size == 1 for r in solo)
        before = engine.batcher.batches_run
        batched = await asyncio.gather(*[engine.agenerate(p, max_tokens=6 + i) for i, p in enumerate(PROMPTS)])
        assert engine.batcher.batches_run - before == 1  # coalesced into one generate
        assert all(r.batch_size == len(PROMPTS) for r in batched)
        for i, (s, b) in enumerate(zip(solo, batched)):
            assert b.token_ids == s.token_ids, f"caller {i} got someone else's or a corrupted completion"
            assert len(b.token_ids) <= 6 + i  # each caller's own max_tokens
            assert b.prompt_tokens == s.prompt_tokens
    finally:
        engine.close()


def test_batcher_from_many_threads(tiny):
    model, tok = tiny
    batcher = DynamicBatcher(model, tok, max_batch=4, wait_s=0.02)
    try:
        ids = [tok(f"thread {i}")["input_ids"] for i in range(6)]
        expected = [batcher.submit(GenRequest(x, 5)).result() for x in ids]
        results: dict[int, list[int]] = {}

        def worker(i):
            results[i] = batcher.submit(GenRequest(ids[i], 5)).result(timeout=60).token_ids

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [results[i] for i in range(6)] == [e.token_ids for e in expected]
    finally:
        batcher.close()


async def test_local_policy_through_litellm_records_zero_cost(tiny_llama):
    sink = MemorySink()
    client = LLMClient(sink)
    pol = Policy(PolicySpec("tiny", f"local/{tiny_llama}", max_tokens=8), client)
    ctx = CallContext(run_id="r", problem_id="p")
    outs = await asyncio.gather(*[pol.write_solution(make_problem(), [f"step {i}"], ctx=ctx) for i in range(3)])
    assert all(o.policy == "tiny" for o in outs)
    assert len(sink.calls) == 3
    for row in sink.calls:
        assert row.cost == 0.0 and row.error is None and row.tokens_in > 0 and 0 < row.tokens_out <= 8
    assert get_engine(tiny_llama).batcher.batches_run >= 1


async def test_local_engine_registered_by_name(tiny):
    model, tok = tiny
    set_engine("tiny-named", LocalEngine(model, tok))
    client = LLMClient(MemorySink())
    text = await Policy(PolicySpec("n", "local/tiny-named", max_tokens=4), client).complete(
        [{"role": "user", "content": "hi"}], ctx=CallContext()
    )
    assert isinstance(text, str)


def test_model_sources(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setenv("BDC_CACHE", str(tmp_path))
    assert resolve_source(tiny_llama) == ("folder", tiny_llama)
    assert resolve_source("HuggingFaceTB/SmolLM2-135M-Instruct") == ("hub", "HuggingFaceTB/SmolLM2-135M-Instruct")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_source(str(gguf)) == ("gguf", str(gguf))
    with pytest.raises(PolicyError, match="bdc models install smollm2-135m"):
        resolve_source("smollm2-135m")
    with pytest.raises(PolicyError, match="does not exist"):
        resolve_source("/no/such/model.gguf")
    with pytest.raises(PolicyError, match="unknown local model"):
        resolve_source("whatever")


async def test_uninstalled_local_model_is_a_clear_recorded_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BDC_CACHE", str(tmp_path))
    sink = MemorySink()
    with pytest.raises(PolicyError) as ei:
        await Policy(PolicySpec("q", "local/qwen2.5-coder-0.5b"), LLMClient(sink)).complete(
            [{"role": "user", "content": "x"}], ctx=CallContext()
        )
    assert ei.value.kind == "not_installed"
    assert "bdc models install qwen2.5-coder-0.5b" in sink.calls[-1].error


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PolicyError, match="cannot load local model"):
        load_model("bdc-test/definitely-not-cached")


def test_looping_detects_short_periods_only():
    import torch

    from engine.agents.local.rows import looping

    loop = [5, 6] * 60  # "()()()..."
    prose = list(range(120))
    long_period = list(range(20)) * 6  # period 20 > REPEAT_MAX_PERIOD
    hit = looping(torch.tensor([loop, prose, long_period]))
    assert hit.tolist() == [True, False, False]
    assert not looping(torch.tensor([loop[:50]])).any()  # shorter than the window


def test_rows_stop_on_their_own(tiny):
    """A looping row ends early with finish_reason repetition; the others are unaffected."""
    from engine.agents.local.batcher import _RowStops
    from engine.agents.local.rows import REPEAT_WINDOW

    model, tok = tiny
    batcher = DynamicBatcher(model, tok, max_batch=4, wait_s=0.2)
    try:
        ids = [tok(f"row {i}")["input_ids"] for i in range(3)]
        long = REPEAT_WINDOW + 40
        futures = [batcher.submit(GenRequest(x, n)) for x, n in zip(ids, (long, 7, long))]
        results = [f.result(timeout=120) for f in futures]
        assert results[1].finish_reason in ("length", "stop") and len(results[1].token_ids) <= 7
        for r in (results[0], results[2]):
            assert r.finish_reason in ("length", "stop", "repetition")
            if r.finish_reason == "repetition":
                assert REPEAT_WINDOW <= len(r.token_ids) < long
            elif r.finish_reason == "length":
                assert len(r.token_ids) == long
    finally:
        batcher.close()
    # the criterion itself: row 0 loops from the start, row 1 reaches its limit of 3 tokens
    import torch

    stops = _RowStops(2, [1000, 3])
    looping_row = [1, 1] + [7, 8] * REPEAT_WINDOW
    other_row = [1, 1] + list(range(2 * REPEAT_WINDOW))
    done = stops(torch.tensor([looping_row, other_row]), None)
    assert done.tolist() == [True, True] and stops.looped == {0: 2 * REPEAT_WINDOW}
