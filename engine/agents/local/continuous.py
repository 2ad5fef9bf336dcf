"""Continuous batching of generation requests: rows join and leave the running batch at every step.

The search fires its calls at staggered times (expansions, simulations, reflections). With the
DynamicBatcher a call that arrives while a ``generate`` runs waits for that whole batch; here it
joins the running batch at the next decode step and leaves it as soon as it is done, so a short
call is never held up by a long one. The engine is transformers' continuous batching manager
(paged KV cache, one background thread); this module adapts it to the DynamicBatcher interface
(``submit(GenRequest) -> Future[GenResult]``, ``close()``, ``batches_run``) and keeps its result
semantics: each request's own ``max_new_tokens``, the end-of-sequence cut, and the loop guard
(every row streams its tokens; once its last ``REPEAT_WINDOW`` tokens are periodic it is cancelled
and answered with ``finish_reason`` ``repetition``, cut at the same length as the DynamicBatcher).

Greedy only: the manager decides ``do_sample`` once for all its rows, so a sampled request
(temperature > 0), or one that could not fit the paged cache, goes to a DynamicBatcher on the
same model (created on first need). Both use the model's plain SDPA attention, so they can share
it, but never at the same moment: a forward pass temporarily sets ``model.config.is_causal``
(False for the paged batch), and a plain ``generate`` running meanwhile in another thread reads
it, computes garbage and may leave it False for good (measured). The fallback therefore runs each
``generate`` inside the manager's ``pause()``: the running rows wait a moment, then resume.

The cache is sized explicitly (``BDC_LOCAL_CB_TOKENS`` tokens, default 16384, in 256-token pages):
left alone, the manager would claim 60% of the machine's RAM on a CPU.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.agents.local.batcher import (
    REPEAT_WINDOW,
    DynamicBatcher,
    GenRequest,
    GenResult,
    default_threads,
    eos_ids,
    looping,
    pad_id,
)

PAGE_SIZE = 256


def cache_tokens() -> int:
    """KV-cache capacity in tokens shared by all running rows: ``$BDC_LOCAL_CB_TOKENS`` or 16384."""
    env = os.environ.get("BDC_LOCAL_CB_TOKENS", "")
    return max(PAGE_SIZE, int(env)) if env.isdigit() else 16384


def supports_continuous(model: Any) -> bool:
    """Whether transformers' continuous batching can drive ``model`` with its current attention."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None) or ""
    # eager would be switched to paged|eager on the shared model, breaking the fallback's plain generate
    return hasattr(model, "init_continuous_batching") and (impl == "sdpa" or "flash" in impl)


@dataclass
class _Row:
    req: GenRequest
    peak: int  # most rows in flight at once during this row's life (GenResult.batch_size)


class ContinuousBatcher:
    """Owns a model and tokenizer; ``submit`` is thread-safe and returns a Future[GenResult].

    ``batches_run`` counts busy periods (the engine going from idle to working): a request that
    joins a running batch does not start a new one, exactly as DynamicBatcher counts ``generate``
    calls. ``steps`` is the number of forward passes; ``fallback`` the DynamicBatcher used for
    sampled or oversized requests (None until one arrives).
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, max_batch: int = 8, wait_s: float = 0.01, threads: int | None = None,
        capacity_tokens: int | None = None, max_batch_tokens: int = 512,
    ) -> None:
        from transformers import ContinuousBatchingConfig

        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.threads = threads if threads is not None else default_threads()
        self.batches_run = 0
        self.tokens_streamed = 0  # generated tokens seen so far (progress, for tests and stats)
        self.fallback: DynamicBatcher | None = None
        self.generation_threads = 0  # intra-op threads seen inside the generation thread (set when it starts)
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}
        self._counter = 0
        self._closed = False
        self.eos_ids = eos_ids(model, tokenizer)
        self.pad_id = pad_id(tokenizer)
        blocks = max(1, (capacity_tokens or cache_tokens()) // PAGE_SIZE)
        self.capacity = blocks * PAGE_SIZE
        gen = copy.deepcopy(getattr(model, "generation_config", None))
        if gen is None:
            from transformers import GenerationConfig

            gen = GenerationConfig()
        # the same greedy settings DynamicBatcher passes to generate (a model's own sampling defaults are off)
        gen.do_sample, gen.temperature, gen.top_p, gen.top_k = False, None, None, None
        gen.max_new_tokens = 256
        gen.eos_token_id = sorted(self.eos_ids) if self.eos_ids else -1
        gen.pad_token_id = self.pad_id
        cfg = ContinuousBatchingConfig(
            page_size=PAGE_SIZE, num_blocks=blocks, max_batch_tokens=max_batch_tokens,
            max_requests_per_batch=max_batch, allow_block_sharing=False, auto_switch_to_flash=False,
            use_async_batching=False, use_cuda_graph=False,
        )
        self._mgr = model.init_continuous_batching(generation_config=gen, continuous_batching_config=cfg)
        self._start_manager()
        self._dispatcher = threading.Thread(target=self._dispatch, name="bdc-local-continuous", daemon=True)
        self._dispatcher.start()

    def _start_manager(self) -> None:
        """``manager.start()`` but on a daemon thread with our intra-op thread count.

        The manager's own thread is not a daemon (a process that forgot ``close`` would hang at
        exit) and would run with torch's default thread count; the thread count is a per-thread
        OpenMP setting, so it must be set inside the generation thread, as DynamicBatcher does.
        """
        mgr = self._mgr
        run = mgr._run_generation_loop
        threads = self.threads

        def loop() -> None:
            import torch

            if threads:
                torch.set_num_threads(threads)
            self.generation_threads = torch.get_num_threads()
            run()

        mgr.background_thread_status.clear()
        mgr._generation_thread = threading.Thread(target=loop, name="bdc-local-cb-generate", daemon=True)
        mgr._generation_thread.start()

    @property
    def steps(self) -> int:
        return int(getattr(self._mgr, "current_batch", 0))

    # -- callers' side ---------------------------------------------------------------------------
    def submit(self, req: GenRequest) -> concurrent.futures.Future:
        if self._closed:
            raise RuntimeError("batcher is closed")
        too_big = len(req.prompt_ids) + req.max_new_tokens > self.capacity
        if req.temperature > 0 or too_big or self._mgr.background_thread_status.fatal_error is not None:
            return self._fallback().submit(req)  # a dead engine (logged by transformers) leaves the fallback
        with self._lock:
            rid = f"bdc-{self._counter}"
            self._counter += 1
            if not self._rows:
                self.batches_run += 1
            self._rows[rid] = _Row(req, len(self._rows) + 1)
            for row in self._rows.values():
                row.peak = max(row.peak, len(self._rows))
        added = self._mgr.add_request(
            list(req.prompt_ids), request_id=rid, max_new_tokens=req.max_new_tokens, streaming=True,
            eos_token_id=sorted(self.eos_ids) if self.eos_ids else -1,
        )
        if added is None:  # the manager refused it (stopping or dead)
            self._finish(rid, error=RuntimeError("continuous batching engine is not running"))
        return req.future

    def _fallback(self) -> DynamicBatcher:
        with self._lock:
            if self.fallback is None:
                self.fallback = DynamicBatcher(
                    self.model, self.tokenizer, max_batch=self.max_batch, wait_s=self.wait_s, threads=self.threads,
                    guard=self._exclusive,
                )
            return self.fallback

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The model to ourselves: the manager's loop paused (if it still runs) until we are done."""
        if self._mgr.is_running():
            with self._mgr.pause():
                yield
        else:
            yield

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.fallback is not None:  # first: its generate calls need the manager's pause
            self.fallback.close()
        self._mgr.stop(block=True, timeout=30, hard_stop=True)  # rows still running fail, like a cancelled call
        self._dispatcher.join(timeout=30)
        with self._lock:
            left = list(self._rows)
        for rid in left:
            self._finish(rid, error=RuntimeError("batcher is closed"))

    # -- dispatcher thread -----------------------------------------------------------------------
    def _dispatch(self) -> None:
        mgr = self._mgr
        while True:
            out = mgr.get_result(timeout=0.05)
            if out is None:
                status = mgr.background_thread_status
                if status.fatal_error is not None:
                    self._fail_all(RuntimeError(f"continuous batching engine failed: {status.fatal_error}"))
                if self._closed or not mgr.is_running():
                    if mgr.output_router.output_queue.empty():
                        return
                continue
            self._handle(out)

    def _handle(self, out: Any) -> None:
        rid = out.request_id
        with self._lock:
            row = self._rows.get(rid)
        if row is None:  # already answered (loop cut or cancelled); the manager's late outputs are dropped
            return
        if out.error:
            self._finish(rid, error=RuntimeError(f"generation failed: {out.error}"))
            return
        tokens = list(out.generated_tokens)
        if not out.is_finished():
            self.tokens_streamed += 1
            if row.req.future.cancelled():
                self._mgr.cancel_request(rid)
                self._finish(rid)
            elif len(tokens) >= REPEAT_WINDOW and self._loops(tokens):
                self._mgr.cancel_request(rid)
                self._finish(rid, result=self._result(row, tokens, "repetition"))
            return
        self.tokens_streamed += 1
        tokens = tokens[: row.req.max_new_tokens]
        cut = next((j for j, t in enumerate(tokens) if t in self.eos_ids), None)
        if cut is not None:
            res = self._result(row, tokens[:cut], "stop")
        elif len(tokens) >= REPEAT_WINDOW and self._loops(tokens):
            res = self._result(row, tokens, "repetition")  # found at the last step, as _RowStops would
        else:
            res = self._result(row, tokens, "length")
        self._finish(rid, result=res)

    @staticmethod
    def _loops(tokens: list[int]) -> bool:
        import torch

        return bool(looping(torch.tensor([tokens[-REPEAT_WINDOW:]]))[0])

    def _result(self, row: _Row, tokens: list[int], reason: str) -> GenResult:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return GenResult(tokens, text, len(row.req.prompt_ids), row.peak, reason)

    def _finish(self, rid: str, *, result: GenResult | None = None, error: BaseException | None = None) -> None:
        with self._lock:
            row = self._rows.pop(rid, None)
        if row is None:
            return
        fut = row.req.future
        if not fut.set_running_or_notify_cancel():
            return
        if error is not None:
            fut.set_exception(error)
        elif result is not None:
            fut.set_result(result)
        else:
            fut.set_exception(RuntimeError("request ended without a result"))

    def _fail_all(self, error: BaseException) -> None:
        with self._lock:
            left = list(self._rows)
        for rid in left:
            self._finish(rid, error=error)
