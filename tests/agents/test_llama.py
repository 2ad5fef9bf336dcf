"""The llama.cpp engine on a real GGUF (SmolLM2-135M, the smaller catalog model): greedy replies, limits,
stop sequences, progress, queued concurrent calls, prefix reuse and the GGUF's chat template.

Needs the ``bdc[llama]`` extra and the model's GGUF (``bdc models install smollm2-135m`` keeps it; tests
run on an empty cache of their own, so the GGUF is looked up in the user's cache, or ``$BDC_TEST_GGUF``).
"""

from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from engine.agents import CallContext, LLMClient, MemorySink, Policy, PolicySpec  # noqa: E402
from engine.agents.local.catalog import CATALOG  # noqa: E402
from engine.agents.local.provider import LocalEngine, set_engine  # noqa: E402

NAME = "smollm2-135m"


def user_gguf() -> Path | None:
    if os.environ.get("BDC_TEST_GGUF"):
        return Path(os.environ["BDC_TEST_GGUF"])
    import platformdirs

    p = Path(platformdirs.user_cache_dir("bdc")) / "gguf" / CATALOG[NAME].gguf_name
    return p if p.is_file() else None


GGUF = user_gguf()
pytestmark = pytest.mark.skipif(GGUF is None, reason=f"no GGUF of {NAME}: bdc models install {NAME}")

STATEMENT = 'def add(a, b):\n    """Return the sum of a and b."""\n'


def ask(question: str) -> list[dict]:
    return [
        {"role": "system", "content": "You are a careful Python programmer."},
        {"role": "user", "content": f"Problem:\n{STATEMENT}\n{question}"},
    ]


@pytest.fixture(scope="module")
def engine():
    eng = LocalEngine.from_gguf(str(GGUF))
    yield eng
    eng.close()


def test_greedy_replies_repeat_and_honour_limits_stops_and_progress(engine):
    counts: list[int] = []
    first = engine.request(ask("Write the function."), max_tokens=24, on_tokens=counts.append).result(timeout=120)
    again = engine.request(ask("Write the function."), max_tokens=24).result(timeout=120)
    assert first.text == again.text and first.text.strip()
    assert 0 < len(first.token_ids) <= 24
    assert counts and counts == sorted(counts) and counts[-1] == len(first.token_ids)
    assert first.prompt_tokens == len(engine.encode(ask("Write the function.")))
    cut = engine.request(ask("Write the function."), max_tokens=24, stop=["\n"]).result(timeout=120)
    assert "\n" not in cut.text and first.text.startswith(cut.text)


def test_concurrent_calls_queue_and_get_their_solo_replies(engine):
    questions = [f"Write the function, variant {i}." for i in range(3)]
    solo = [engine.request(ask(q), max_tokens=12).result(timeout=120).text for q in questions]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        futs = [pool.submit(lambda q=q: engine.request(ask(q), max_tokens=12).result(timeout=300)) for q in questions]
        together = [f.result().text for f in futs]
    assert together == solo


def test_a_call_about_the_same_problem_reuses_the_cached_prefix(engine):
    b = engine.batcher
    engine.request(ask("Write the function."), max_tokens=4).result(timeout=120)
    before = b.prefix_tokens_reused
    second = ask("List two edge cases.")
    shared = b.cached_prefix(engine.encode(second))
    engine.request(second, max_tokens=4).result(timeout=120)
    statement_tokens = len(engine.encode([{"role": "user", "content": STATEMENT}])) // 2
    assert shared >= statement_tokens  # system prompt + statement were in place
    assert b.prefix_tokens_reused - before == shared


def test_the_engine_serves_a_search_policy_through_litellm(engine):
    import asyncio

    set_engine("llama-smollm2", engine)
    sink = MemorySink()
    pol = Policy(PolicySpec("s", "local/llama-smollm2", max_tokens=16), LLMClient(sink))
    text = asyncio.run(pol.complete(ask("Write the function."), ctx=CallContext()))
    assert text.strip() and sink.calls[-1].error is None and 0 < sink.calls[-1].tokens_out <= 16


def test_the_gguf_chat_template_matches_the_converted_tokenizer(engine):
    import platformdirs

    folder = Path(platformdirs.user_cache_dir("bdc")) / "models" / NAME
    if not (folder / "tokenizer_config.json").is_file():
        pytest.skip("no converted model to compare with")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    text = tok.apply_chat_template(ask("Write the function."), add_generation_prompt=True, tokenize=False)
    assert engine.encode(ask("Write the function.")) == list(tok(text, add_special_tokens=False)["input_ids"])
