"""Continuous batching (engine/agents/local/continuous.py) on a tiny random Llama.

The reference everywhere is a DynamicBatcher fed one request at a time, i.e. a plain
``model.generate`` per request: continuous batching must give the same greedy tokens, the same
finish reasons and the same loop cut, while letting requests join a running batch. The reference
runs on its own copy of the model: two threads must never run one model object at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

from engine.agents import CallContext, LLMClient, MemorySink, Policy, PolicySpec
from engine.agents.local.batcher import DynamicBatcher
from engine.agents.local.continuous import ContinuousBatcher, supports_continuous
from engine.agents.local.loader import load_model
from engine.agents.local.provider import LocalEngine, set_engine
from engine.agents.local.rows import REPEAT_WINDOW, GenRequest


@pytest.fixture(scope="module")
def tiny(tiny_llama):
    return load_model(tiny_llama)


@pytest.fixture(scope="module")
def reference(tiny_llama):
    """One request at a time through ``generate``: ``ref(prompt_ids, max_new_tokens) -> GenResult``."""
    model, tok = load_model(tiny_llama)
    solo = DynamicBatcher(model, tok, max_batch=1, wait_s=0.0)
    cache: dict[tuple, object] = {}

    def ref(ids: list[int], n: int):
        key = (tuple(ids), n)
        if key not in cache:
            cache[key] = solo.submit(GenRequest(list(ids), n)).result(timeout=60)
        return cache[key]

    yield ref
    solo.close()


@pytest.fixture
def cb(tiny):
    model, tok = tiny
    batcher = ContinuousBatcher(model, tok, max_batch=8, threads=1)
    yield batcher
    batcher.close()


def ids_of(tok, text: str) -> list[int]:
    return list(tok(text)["input_ids"])


def test_concurrent_greedy_matches_one_at_a_time(tiny, reference, cb):
    _, tok = tiny
    prompts = [ids_of(tok, t) for t in ("a", "a much longer prompt so lengths differ " * 4, "third one", "row 2")]
    limits = [5, 17, 9, 130]  # the last one runs into the loop guard in the reference
    futures = [cb.submit(GenRequest(p, n)) for p, n in zip(prompts, limits)]
    results = [f.result(timeout=60) for f in futures]
    for p, n, got in zip(prompts, limits, results):
        want = reference(p, n)
        assert got.token_ids == want.token_ids, "a row got someone else's or a corrupted completion"
        assert got.finish_reason == want.finish_reason and got.text == want.text
        assert got.prompt_tokens == len(p) and len(got.token_ids) <= n
    assert cb.batches_run == 1  # all four shared one running batch
    assert max(r.batch_size for r in results) == len(prompts)


def test_request_joins_the_running_batch_and_leaves_first(tiny, reference, cb):
    _, tok = tiny
    long_ids = ids_of(tok, "row 3")  # greedy: 200+ tokens before it loops (see the reference below)
    long_ref = reference(long_ids, 300)
    assert len(long_ref.token_ids) > 100
    long = cb.submit(GenRequest(long_ids, 300))
    deadline = time.monotonic() + 30
    while cb.tokens_streamed < 3 and time.monotonic() < deadline:  # the long row is mid-generation
        time.sleep(0.001)
    assert not long.done()
    short_ids = ids_of(tok, "a short late one")
    short = cb.submit(GenRequest(short_ids, 4))
    done, _ = concurrent.futures.wait([long, short], timeout=60, return_when=concurrent.futures.FIRST_COMPLETED)
    assert short in done and long not in done  # it did not wait for the long row to end
    assert short.result().token_ids == reference(short_ids, 4).token_ids
    assert short.result().batch_size == 2
    assert long.result(timeout=60).token_ids == long_ref.token_ids  # joining did not disturb it
    assert cb.batches_run == 1  # one busy period: the short request joined, it did not start a batch


def test_loop_guard_cancels_a_looping_row(tiny, reference, cb):
    _, tok = tiny
    looping_ids = ids_of(tok, "row 2")
    want = reference(looping_ids, 400)
    assert want.finish_reason == "repetition"  # this prompt loops under greedy decoding
    other_ids = ids_of(tok, "row 0")
    f_loop, f_other = cb.submit(GenRequest(looping_ids, 400)), cb.submit(GenRequest(other_ids, 20))
    got = f_loop.result(timeout=60)
    assert got.finish_reason == "repetition"
    assert got.token_ids == want.token_ids and REPEAT_WINDOW <= len(got.token_ids) < 400
    assert f_other.result(timeout=60).token_ids == reference(other_ids, 20).token_ids
    # the cancelled row left the batch: a later request runs alone in a new busy period
    cb.submit(GenRequest(other_ids, 3)).result(timeout=60)
    assert cb.batches_run == 2


def test_more_rows_than_the_cache_holds_at_once(tiny, reference):
    """4 rows of up to 400 tokens share a 512-token cache: the scheduler makes room, outputs stay exact."""
    model, tok = tiny
    batcher = ContinuousBatcher(model, tok, threads=1, capacity_tokens=512)
    try:
        prompts = [ids_of(tok, f"row {i}") for i in (3, 5, 1, 6)]
        results = [f.result(timeout=60) for f in [batcher.submit(GenRequest(p, 400)) for p in prompts]]
        assert sum(len(r.token_ids) + r.prompt_tokens for r in results) > 512
        for p, r in zip(prompts, results):
            want = reference(p, 400)
            assert (r.token_ids, r.finish_reason) == (want.token_ids, want.finish_reason)
        assert batcher.fallback is None
    finally:
        batcher.close()


def test_sampled_and_oversized_requests_use_the_dynamic_fallback(tiny):
    model, tok = tiny
    batcher = ContinuousBatcher(model, tok, threads=1, capacity_tokens=256)
    try:
        ids = ids_of(tok, "sample me")
        res = batcher.submit(GenRequest(ids, 6, temperature=0.8, top_p=0.9)).result(timeout=60)
        assert batcher.fallback is not None and batcher.fallback.batches_run == 1
        assert len(res.token_ids) <= 6
        big = batcher.submit(GenRequest(ids, 300)).result(timeout=60)  # prompt + 300 > 256 cache tokens
        assert batcher.fallback.batches_run == 2 and big.finish_reason in ("stop", "length", "repetition")
        assert batcher.batches_run == 0  # neither touched the paged engine
    finally:
        batcher.close()


def test_fallback_never_runs_the_model_next_to_the_running_batch(tiny, reference, cb):
    """A sampled request arriving mid-batch pauses the batch for its generate, then the batch resumes.

    Unguarded, the plain generate ran while the paged forward had ``config.is_causal`` set to False:
    it computed garbage and left the flag False, so every later generate on the model was wrong too.
    """
    model, tok = tiny
    long_ids = ids_of(tok, "row 3")
    long = cb.submit(GenRequest(long_ids, 300))
    deadline = time.monotonic() + 30
    while cb.tokens_streamed < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    sampled = [cb.submit(GenRequest(ids_of(tok, f"sampled {i}"), 40, temperature=0.7)) for i in range(3)]
    assert all(len(f.result(timeout=60).token_ids) <= 40 for f in sampled)
    assert long.result(timeout=60).token_ids == reference(long_ids, 300).token_ids
    with cb._mgr.pause():  # outside a forward pass the flag must be back to its own value
        assert getattr(model.config, "is_causal", None) in (None, True)
    check_ids = ids_of(tok, "row 2")
    again = cb.submit(GenRequest(check_ids, 50, temperature=1e-9)).result(timeout=60)  # plain generate, via fallback
    assert again.token_ids == reference(check_ids, 50).token_ids[: len(again.token_ids)]


def test_generation_thread_count_and_clean_close(tiny):
    model, tok = tiny
    before = set(threading.enumerate())  # objects, not idents: an ended thread's ident is reused
    batcher = ContinuousBatcher(model, tok, threads=1)
    running = batcher.submit(GenRequest(ids_of(tok, "row 3"), 300))
    deadline = time.monotonic() + 30
    while batcher.tokens_streamed < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert batcher.generation_threads == 1  # what the manager's own thread starts with
    started = [t for t in threading.enumerate() if t not in before]
    assert started and all(t.daemon for t in started)  # a forgotten close() cannot hang interpreter exit
    batcher.close()
    with pytest.raises(RuntimeError):
        running.result(timeout=10)  # a row still running when closed fails instead of hanging
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(GenRequest([1, 2], 2))
    batcher.close()  # idempotent
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leftover, f"threads left running: {[t.name for t in leftover]}"


async def test_engine_selection_and_litellm_end_to_end(tiny, monkeypatch):
    model, tok = tiny
    monkeypatch.setenv("BDC_LOCAL_BATCHING", "dynamic")
    forced = LocalEngine(model, tok)
    assert forced.batching == "dynamic"
    forced.close()
    monkeypatch.setenv("BDC_LOCAL_BATCHING", "continuous")
    engine = LocalEngine(model, tok)
    assert engine.batching == "continuous" and supports_continuous(model)
    set_engine("tiny-continuous", engine)
    sink = MemorySink()
    pol = Policy(PolicySpec("cb", "local/tiny-continuous", max_tokens=8), LLMClient(sink))
    texts = await asyncio.gather(
        *[pol.complete([{"role": "user", "content": f"hi {i}"}], ctx=CallContext(sample_index=i)) for i in range(3)]
    )
    assert all(isinstance(t, str) for t in texts)
    assert len(sink.calls) == 3
    for row in sink.calls:
        assert row.error is None and row.cost == 0.0 and row.tokens_in > 0 and 0 < row.tokens_out <= 8
    assert engine.batcher.batches_run >= 1


def test_eager_attention_falls_back_to_dynamic(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(tiny_llama)
    assert not supports_continuous(model)
    engine = LocalEngine(model, tok, batching="continuous")
    try:
        assert engine.batching == "dynamic"
        assert engine.batcher.submit(GenRequest(ids_of(tok, "x"), 3)).result(timeout=60).token_ids is not None
    finally:
        engine.close()
