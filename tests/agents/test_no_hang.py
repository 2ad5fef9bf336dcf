"""No local call waits forever (issue 10): incompatible transformers, killed or stalled generation threads.

transformers 5.24 changed the private ``_run_generation_loop`` signature under the continuous batcher:
its thread died at once and every call waited forever. These tests rebuild that situation with a
manager stubbed the old way, kill real generation threads mid-batch, and block a forward pass, and
hold every waiter to a deadline.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import threading
import time

import pytest

from engine.agents.local.batcher import DynamicBatcher
from engine.agents.local.continuous import ContinuousBatcher, ContinuousUnavailable
from engine.agents.local.loader import load_model
from engine.agents.local.provider import LocalEngine
from engine.agents.local.rows import GenRequest, LocalGenerationError


@pytest.fixture
def tiny(tiny_llama):
    """A fresh model per test: a killed or blocked thread must not leave state behind for the next one."""
    return load_model(tiny_llama)


def ids_of(tok, text: str) -> list[int]:
    return list(tok(text)["input_ids"])


def kill(thread: threading.Thread) -> None:
    """Raise SystemExit inside ``thread``: not an Exception, so no ``except Exception`` in it sees it."""
    n = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))
    assert n == 1, "thread not found"


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


def all_answered(futures, within: float) -> list:
    """Every future answered (result or error) within ``within`` seconds; returns results or exceptions."""
    done, not_done = concurrent.futures.wait(futures, timeout=within)
    assert not not_done, f"{len(not_done)} of {len(futures)} waiters still waiting after {within} s"
    return [f.exception() or f.result() for f in futures]


class OldLoopCall:
    """``start()`` as transformers 5.23 was driven: ``_run_generation_loop()`` without its new argument."""

    @staticmethod
    def manager_class():
        from transformers import ContinuousBatchingManager

        class Manager(ContinuousBatchingManager):
            def start(self) -> None:
                self._generation_thread = threading.Thread(target=self._run_generation_loop)  # TypeError in 5.24
                self._generation_thread.start()

        return Manager


def stub_manager(monkeypatch, model, manager_cls) -> None:
    def init(self, generation_config=None, continuous_batching_config=None):
        return manager_cls(self, generation_config, continuous_batching_config)

    monkeypatch.setattr(type(model), "init_continuous_batching", init)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the stub's thread dies
def test_a_manager_whose_thread_dies_at_start_leaves_dynamic_batching_with_one_line(tiny, monkeypatch, caplog):
    model, tok = tiny
    stub_manager(monkeypatch, model, OldLoopCall.manager_class())
    caplog.set_level(logging.INFO, logger="engine.agents")
    started = time.monotonic()
    engine = LocalEngine(model, tok, batching="continuous")
    try:
        assert time.monotonic() - started < 30  # the check fails fast, it does not wait for its bound
        assert engine.batching == "dynamic"
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("engine.agents")]
        assert len(lines) == 1 and "continuous batching unavailable" in lines[0]
        assert "generation thread exited" in lines[0] and "\n" not in lines[0]
        res = engine.request([{"role": "user", "content": "hi"}], max_tokens=4).result(timeout=60)
        assert len(res.token_ids) <= 4
    finally:
        engine.close()


def test_a_manager_with_a_changed_entry_point_is_refused_before_it_starts(tiny, monkeypatch, caplog):
    from transformers import ContinuousBatchingManager

    class NoStreaming(ContinuousBatchingManager):
        def add_request(self, input_ids, request_id=None, max_new_tokens=None):  # lost streaming and eos
            raise AssertionError("must not be called")

    model, tok = tiny
    stub_manager(monkeypatch, model, NoStreaming)
    with pytest.raises(ContinuousUnavailable, match=r"NoStreaming\.add_request.*streaming"):
        ContinuousBatcher(model, tok, threads=1)
    caplog.set_level(logging.WARNING, logger="engine.agents")
    engine = LocalEngine(model, tok, batching="continuous")
    try:
        assert engine.batching == "dynamic"
        assert [r.getMessage() for r in caplog.records].count(
            next(r.getMessage() for r in caplog.records if "add_request" in r.getMessage())
        ) == 1
    finally:
        engine.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the killed thread
def test_killing_the_generation_thread_mid_batch_answers_every_waiter_within_10s(tiny, tiny_llama):
    model, tok = tiny
    before = set(threading.enumerate())  # objects, not idents: an ended thread's ident is reused
    engine = LocalEngine(model, tok, batching="continuous")
    batcher = engine.batcher
    assert isinstance(batcher, ContinuousBatcher) and batcher.broken is None
    gen_threads = [t for t in threading.enumerate() if t not in before and not t.name.startswith("bdc-")]
    assert len(gen_threads) == 1 and gen_threads[0].daemon  # the manager's own generation thread
    prompts = [ids_of(tok, f"row {i}") for i in (3, 5, 1, 6)]
    try:
        running = [engine.watchdog.track(batcher.submit(GenRequest(p, 300))) for p in prompts]
        wait_for(lambda: batcher.tokens_streamed >= 6)
        assert not any(f.done() for f in running)
        killed_at = time.monotonic()
        kill(gen_threads[0])
        later = [engine.request([{"role": "user", "content": f"after {i}"}], max_tokens=5) for i in range(2)]
        answers = all_answered(running + later, within=10.0)
        assert time.monotonic() - killed_at < 10.0
        assert "generation thread exited" in (batcher.broken or "")
        # failed over: the fallback answered them with the same greedy tokens a plain generate gives
        ref_model, _ = load_model(tiny_llama)
        solo = DynamicBatcher(ref_model, tok, max_batch=1, wait_s=0.0)
        try:
            for p, got in zip(prompts, answers[:4]):
                assert not isinstance(got, BaseException), got
                assert got.token_ids == solo.submit(GenRequest(p, 300)).result(timeout=60).token_ids
        finally:
            solo.close()
        assert all(not isinstance(a, BaseException) and len(a.token_ids) <= 5 for a in answers[4:])
    finally:
        engine.close()


def test_killing_the_dynamic_worker_mid_generate_fails_every_waiter_with_the_reason(tiny):
    model, tok = tiny
    engine = LocalEngine(model, tok, batching="dynamic")
    batcher = engine.batcher
    try:
        running = [engine.request([{"role": "user", "content": f"row {i}"}], max_tokens=300) for i in range(3)]
        wait_for(lambda: batcher.steps >= 3)
        kill(batcher._thread)
        queued = engine.request([{"role": "user", "content": "queued"}], max_tokens=5)
        answers = all_answered(running + [queued], within=10.0)
        for a in answers:
            assert isinstance(a, LocalGenerationError) and "dynamic batching thread died: SystemExit" in str(a)
        with pytest.raises(LocalGenerationError, match="died"):  # later calls fail at once too
            engine.request([{"role": "user", "content": "later"}], max_tokens=5).result(timeout=1)
    finally:
        engine.close()


@pytest.mark.parametrize("batching", ["dynamic", "continuous"])
def test_the_watchdog_ends_a_call_whose_generation_makes_no_progress(tiny, batching):
    model, tok = tiny
    engine = LocalEngine(model, tok, batching=batching)
    assert engine.batching == batching
    engine.watchdog.stall_s = 1.5
    release = threading.Event()
    entered = threading.Event()

    def block(module, args):  # a forward pass that never returns (until the test lets it)
        entered.set()
        release.wait(60)

    handle = model.model.layers[0].register_forward_pre_hook(block)
    try:
        fut = engine.request([{"role": "user", "content": "stuck"}], max_tokens=20)
        assert entered.wait(30)
        (err,) = all_answered([fut], within=10.0)
        assert isinstance(err, LocalGenerationError) and "no token progress for" in str(err)
        assert "BDC_LOCAL_STALL_S" in str(err) and "stuck" in str(err)
        if batching == "continuous":  # its thread still holds the model: later calls fail fast, saying so
            later = engine.request([{"role": "user", "content": "later"}], max_tokens=5)
            (err2,) = all_answered([later], within=10.0)
            assert isinstance(err2, LocalGenerationError) and "stuck" in str(err2)
    finally:
        release.set()
        handle.remove()
        engine.close()
