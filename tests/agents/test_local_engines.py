"""Choosing the local engine (llama.cpp or transformers), the llama.cpp batcher's guarantees on a stand-in
``Llama``, and a local error failing at once. None of these needs ``llama_cpp`` (CI does not install the
``bdc[llama]`` extra); tests/agents/test_llama.py runs the real engine when it is installed."""

from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest

from engine.agents import CallContext, LLMClient, MemorySink, Policy, PolicyError, PolicySpec
from engine.agents.config import stored_agent
from engine.agents.llm import import_litellm
from engine.agents.local import engines
from engine.agents.local.llama import LlamaBatcher
from engine.agents.local.loader import gguf_source
from engine.agents.local.provider import LocalEngine, set_engine
from engine.agents.local.rows import GenRequest, LocalGenerationError
from engine.agents.local.watchdog import Watchdog
from engine.errors import ConfigError

from .test_no_hang import all_answered, kill, wait_for


@pytest.fixture
def no_llama(monkeypatch):
    """This process as if ``llama_cpp`` were not installed."""
    monkeypatch.setattr(engines, "llama_import_error", lambda: "ModuleNotFoundError: No module named 'llama_cpp'")
    monkeypatch.setattr(engines, "_warned", set())


@pytest.fixture
def with_llama(monkeypatch):
    """This process as if ``llama_cpp`` imported (only the choice is tested: nothing is loaded with it)."""
    monkeypatch.setattr(engines, "llama_import_error", lambda: None)
    monkeypatch.setattr(engines, "_warned", set())


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv(engines.ENV, raising=False)
    monkeypatch.setenv("BDC_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("BDC_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_auto_is_llama_where_it_imports_else_transformers(clean_env, monkeypatch, caplog):
    monkeypatch.setattr(engines, "_warned", set())
    monkeypatch.setattr(engines, "llama_import_error", lambda: None)
    assert engines.resolve_engine() == "llama"
    monkeypatch.setattr(engines, "llama_import_error", lambda: "ModuleNotFoundError: No module named 'llama_cpp'")
    with caplog.at_level(logging.WARNING):
        assert engines.resolve_engine() == "transformers"
    assert not caplog.records  # auto without the extra is the normal case: nothing to say


def test_explicit_llama_without_the_extra_falls_back_with_one_line(clean_env, no_llama, monkeypatch, caplog):
    monkeypatch.setenv(engines.ENV, "llama")
    with caplog.at_level(logging.WARNING):
        assert engines.resolve_engine() == "transformers"
        assert engines.resolve_engine() == "transformers"
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "No module named 'llama_cpp'" in lines[0] and "bdc[llama]" in lines[0]


def test_environment_beats_config_file_and_bad_values_are_named(clean_env, with_llama, monkeypatch):
    (clean_env / "config.toml").write_text('[local]\nengine = "transformers"\n')
    assert engines.requested_engine() == "transformers" and engines.resolve_engine() == "transformers"
    monkeypatch.setenv(engines.ENV, "LLAMA")
    assert engines.resolve_engine() == "llama"
    monkeypatch.setenv(engines.ENV, "vllm")
    with pytest.raises(ConfigError, match=r"\$BDC_LOCAL_ENGINE: local engine 'vllm' is not one of llama"):
        engines.resolve_engine()
    monkeypatch.delenv(engines.ENV)
    (clean_env / "config.toml").write_text('[local]\nengine = "gpu"\n')
    with pytest.raises(ConfigError, match=r"config.toml: \[local\] engine: local engine 'gpu'"):
        engines.resolve_engine()
    (clean_env / "config.toml").write_text('local = "llama"\n')
    with pytest.raises(ConfigError, match=r"'local' must be a \[local\] table"):
        engines.resolve_engine()


def test_only_gguf_files_run_on_llama(clean_env, tiny_llama):
    assert gguf_source(tiny_llama)[0] is None and "folder" in gguf_source(tiny_llama)[1]
    path, why = gguf_source("smollm2-135m")  # catalog model whose GGUF is not kept (empty cache)
    assert path is None and "bdc models install smollm2-135m" in why
    gguf = clean_env / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert gguf_source(str(gguf)) == (str(gguf), "")


def test_a_model_llama_cannot_open_loads_on_transformers_with_one_line(clean_env, with_llama, tiny_llama, caplog):
    with caplog.at_level(logging.WARNING):
        engine = LocalEngine.load(tiny_llama, "llama")
    try:
        assert engine.engine == "transformers"
        assert [r.getMessage() for r in caplog.records] == [
            f"local model {tiny_llama}: llama.cpp cannot run it (llama.cpp runs GGUF files, this is a folder): "
            "transformers engine"
        ]
    finally:
        engine.close()


def test_the_run_config_records_each_local_agents_engine(clean_env, with_llama, tiny_llama, monkeypatch, caplog):
    gguf = clean_env / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert stored_agent(PolicySpec("g", f"local/{gguf}"))["extra"] == {"local_engine": "llama"}
    with caplog.at_level(logging.WARNING):
        assert stored_agent(PolicySpec("f", f"local/{tiny_llama}"))["extra"] == {"local_engine": "transformers"}
    assert "llama.cpp cannot run it" in caplog.text  # said when the run is made, not only at load
    pinned = PolicySpec("p", f"local/{gguf}", extra={"local_engine": "transformers"})
    assert stored_agent(pinned)["extra"] == {"local_engine": "transformers"}
    assert "local_engine" not in stored_agent(PolicySpec("o", "openai/gpt-4o-mini")).get("extra", {})
    monkeypatch.setattr(engines, "llama_import_error", lambda: "ImportError: x")
    assert stored_agent(PolicySpec("g", f"local/{gguf}"))["extra"] == {"local_engine": "transformers"}


# -- the llama.cpp batcher on a stand-in Llama: queueing, stops, progress, death, stalls ----------------------------
class FakeLlama:
    """The surface of ``llama_cpp.Llama`` the batcher uses; token t decodes to chr(t). ``generate`` replays
    ``reply`` (then repeats its last token); ``gate`` (an Event) holds every token until it is set."""

    def __init__(self, reply: str, *, n_ctx: int = 256, gate: threading.Event | None = None, fail_on: str = ""):
        self.reply = [ord(c) for c in reply]
        self._n_ctx = n_ctx
        self.gate = gate
        self.fail_on = fail_on
        self.prompts: list[str] = []

    def n_ctx(self) -> int:
        return self._n_ctx

    def detokenize(self, tokens, special: bool = False) -> bytes:
        return "".join(chr(t) for t in tokens).encode()

    def generate(self, tokens, **kw):
        prompt = "".join(chr(t) for t in tokens)
        self.prompts.append(prompt)
        if self.fail_on and self.fail_on in prompt:
            raise RuntimeError(f"decode failed on {self.fail_on}")
        self.input_ids, self.n_tokens = np.array(list(tokens), dtype=np.intc), len(tokens)  # what Llama keeps
        i = 0
        while True:
            if self.gate is not None and not self.gate.wait(60):
                return
            yield self.reply[min(i, len(self.reply) - 1)]
            i += 1


def req(prompt: str, max_new: int = 50, **kw) -> GenRequest:
    return GenRequest([ord(c) for c in prompt], max_new, **kw)


EOS = 0


def test_llama_batcher_answers_queued_calls_in_order_each_with_its_limits():
    llm = FakeLlama('say ["a", "b"] then more\0')
    batcher = LlamaBatcher(llm, eos_ids={EOS})
    counts: list[int] = []
    try:
        calls = [
            batcher.submit(req("p1")),  # ends at the end-of-generation token
            batcher.submit(req("p2", 5)),  # its own max tokens
            batcher.submit(req("p3", stop=('"]',), on_tokens=counts.append)),  # stop sequence, left out
        ]
        first, short, stopped = [f.result(timeout=10) for f in calls]
        assert (first.text, first.finish_reason) == ('say ["a", "b"] then more', "stop")
        assert (short.text, short.finish_reason) == ("say [", "length")
        assert (stopped.text, stopped.finish_reason) == ('say ["a", "b', "stop")
        assert counts == sorted(counts) and counts[0] == 1 and counts[-1] >= len('say ["a", "b')
        assert llm.prompts == ["p1", "p2", "p3"] and batcher.batches_run == 3
    finally:
        batcher.close()


def test_the_queue_serves_the_call_sharing_the_cached_prefix_first_but_passes_over_nobody_for_ever():
    gate = threading.Event()
    llm = FakeLlama("r\0", gate=gate)
    batcher = LlamaBatcher(llm, eos_ids={EOS})
    try:
        first = batcher.submit(req("problem A: write it"))
        wait_for(lambda: llm.prompts)  # running, its prompt in the cache
        other = batcher.submit(req("problem B: write it"))
        same = [batcher.submit(req(f"problem A: step {i}")) for i in range(6)]
        gate.set()
        all_answered([first, other, *same], within=10.0)
        order = llm.prompts[1:]
        assert order[:4] == [f"problem A: step {i}" for i in range(4)]  # longest shared prefix first
        assert order[4] == "problem B: write it"  # passed over MAX_PASSED_OVER times: its turn
        assert order[5:] == ["problem A: step 4", "problem A: step 5"]
    finally:
        batcher.close()


def test_llama_batcher_cuts_a_loop_and_fits_the_context_window():
    batcher = LlamaBatcher(FakeLlama("ab" * 100, n_ctx=40), eos_ids={EOS})
    try:
        long = batcher.submit(req("x" * 41)).exception(timeout=10)
        assert isinstance(long, LocalGenerationError) and "context window of 40 tokens" in str(long)
        fits = batcher.submit(req("x" * 30, 500)).result(timeout=10)
        assert fits.finish_reason == "length" and len(fits.token_ids) == 10  # the 10 tokens of room left
    finally:
        batcher.close()
    looping = LlamaBatcher(FakeLlama("ab" * 200, n_ctx=1000), eos_ids={EOS})
    try:
        res = looping.submit(req("x", 500)).result(timeout=10)
        assert res.finish_reason == "repetition" and len(res.token_ids) < 200
    finally:
        looping.close()


def test_a_failing_llama_call_fails_alone():
    batcher = LlamaBatcher(FakeLlama("ok\0", fail_on="bad"), eos_ids={EOS})
    try:
        bad, good = batcher.submit(req("bad")), batcher.submit(req("fine"))
        assert "decode failed on bad" in str(bad.exception(timeout=10))
        assert good.result(timeout=10).text == "ok"
    finally:
        batcher.close()


def test_killing_the_llama_worker_fails_every_waiter_at_once():
    gate = threading.Event()
    batcher = LlamaBatcher(FakeLlama("x" * 500, gate=gate), eos_ids={EOS})
    try:
        running = batcher.submit(req("running", 400))
        queued = [batcher.submit(req(f"queued {i}")) for i in range(3)]
        wait_for(lambda: batcher.batches_run >= 1)
        kill(batcher._thread)
        gate.set()
        for err in all_answered([running, *queued], within=10.0):
            assert isinstance(err, LocalGenerationError) and "llama.cpp generation thread died: SystemExit" in str(err)
        later = batcher.submit(req("later"))
        assert "died" in str(later.exception(timeout=1))
    finally:
        batcher.close()


def test_the_watchdog_ends_a_stalled_llama_call_and_the_engine_goes_on():
    gate = threading.Event()
    batcher = LlamaBatcher(FakeLlama("y\0", gate=gate), eos_ids={EOS})
    dog = Watchdog(batcher, stall_s=1.0, poll_s=0.05)
    try:
        stuck = dog.track(batcher.submit(req("stuck")))
        (err,) = all_answered([stuck], within=10.0)
        assert isinstance(err, LocalGenerationError) and "no token progress" in str(err) and "LlamaBatcher" in str(err)
        gate.set()  # the token it waited for arrives: the abandoned generation ends there
        assert dog.track(batcher.submit(req("next"))).result(timeout=10).text == "y"
    finally:
        dog.close()
        batcher.close()


# -- a local error fails once, at once, naming the reason --------------------------------------------------------
async def test_a_local_engine_error_fails_fast_with_its_reason(tiny_llama):
    from engine.agents.local.loader import load_model

    model, tok = load_model(tiny_llama)
    engine = LocalEngine(model, tok, batching="dynamic")
    engine.close()  # every later call: "batcher is closed"
    set_engine("closed-engine", engine)
    sink = MemorySink()
    import_litellm()  # its first import takes seconds on a loaded machine: not part of the call
    start = time.monotonic()
    with pytest.raises(PolicyError) as ei:
        await Policy(PolicySpec("c", "local/closed-engine"), LLMClient(sink, backoff_s=1.0)).complete(
            [{"role": "user", "content": "hi"}], ctx=CallContext()
        )
    assert time.monotonic() - start < 5
    assert ei.value.kind == "local_error" and "batcher is closed" in str(ei.value)
    assert sink.calls[-1].retries == 0 and sink.calls[-1].error == "local_error: batcher is closed"


def test_transformers_weights_mode_from_the_environment(tiny_llama, monkeypatch):
    import torch

    from engine.agents.local.loader import load_model, torch_mode

    monkeypatch.delenv("BDC_LOCAL_TORCH", raising=False)
    assert torch_mode() == "fp32"
    monkeypatch.setenv("BDC_LOCAL_TORCH", "fp8")
    with pytest.raises(ConfigError, match=r"\$BDC_LOCAL_TORCH='fp8' is not one of fp32, bf16, int8"):
        torch_mode()
    monkeypatch.setenv("BDC_LOCAL_TORCH", "int8")
    model, tok = load_model(tiny_llama, device="cpu")
    assert type(model.model.layers[0].self_attn.q_proj).__module__.startswith("torch.ao.nn.quantized")
    engine = LocalEngine(model, tok, batching="dynamic")
    try:
        res = engine.request([{"role": "user", "content": "hi"}], max_tokens=5).result(timeout=60)
        assert 0 < len(res.token_ids) <= 5
    finally:
        engine.close()
    monkeypatch.setenv("BDC_LOCAL_TORCH", "bf16")
    model, _ = load_model(tiny_llama, device="cpu")
    assert next(model.parameters()).dtype == torch.bfloat16
