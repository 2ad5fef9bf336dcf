"""Continuous batching of generation requests: rows join and leave the running batch at every step.

The search fires its calls at staggered times (expansions, simulations, reflections). With the
DynamicBatcher a call that arrives while a ``generate`` runs waits for that whole batch; here it
joins the running batch at the next decode step and leaves it as soon as it is done, so a short
call is never held up by a long one. The engine is transformers' continuous batching manager
(paged KV cache, one background thread); this module adapts it to the batcher protocol
(``rows.Batcher``) and keeps its result semantics: each request's own ``max_new_tokens``, the
end-of-sequence cut, and the loop guard (every row streams its tokens; once its last
``REPEAT_WINDOW`` tokens are periodic it is cancelled and answered with ``finish_reason``
``repetition``), all through ``rows.finish_row``.

Only the manager's public API is used (``init_continuous_batching``, ``start``, ``add_request``,
``get_result``, ``cancel_request``, ``pause``, ``is_running``, ``stop``); an earlier version drove
the private ``_run_generation_loop``, whose signature changed in transformers 5.24 and left every
call waiting forever. A new batcher checks those entry points and runs a short real warm-up
generate before it takes calls (``ContinuousUnavailable`` otherwise: the engine falls back to
dynamic batching and logs one line). Its generation thread is started from a short-lived daemon
thread, so it inherits daemon status (a forgotten ``close`` cannot hang interpreter exit), the
intra-op thread count and inference mode from there.

Nothing hangs on it: if the generation thread dies (crash, killed) or its dispatcher does, the
rows in flight and every later request move to the fallback DynamicBatcher at once; if it stalls
(the engine's watchdog calls ``abandon``), later requests fail with that reason rather than wait.

Greedy only: the manager decides ``do_sample`` once for all its rows, so a sampled request
(temperature > 0), or one that could not fit the paged cache, goes to a DynamicBatcher on the
same model (created on first need). Both use the model's plain SDPA attention, so they can share
it, but never at the same moment: the fallback runs each ``generate`` inside the manager's
``pause()``: the running rows wait a moment, then resume.

The cache is sized explicitly (``BDC_LOCAL_CB_TOKENS`` tokens, default 16384, in 256-token pages):
left alone, the manager would claim 60% of the machine's RAM on a CPU.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import inspect
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.agents.local.batcher import DynamicBatcher, default_threads, eos_ids, pad_id
from engine.agents.local.rows import (
    REPEAT_WINDOW,
    GenRequest,
    GenResult,
    LocalGenerationError,
    claim,
    deliver,
    finish_row,
    loops,
    step_row,
)

log = logging.getLogger(__name__)
PAGE_SIZE = 256
WARMUP_TOKENS = 2
STOP_WAIT_S = 5.0  # how long a broken engine's thread may take to end before the model counts as unsafe

# the public entry points this module calls, with the keyword arguments it passes
MODEL_ENTRY_POINTS = {"init_continuous_batching": ("generation_config", "continuous_batching_config")}
MANAGER_ENTRY_POINTS = {
    "start": (),
    "is_running": (),
    "add_request": ("input_ids", "request_id", "max_new_tokens", "streaming", "eos_token_id"),
    "get_result": ("timeout",),
    "cancel_request": ("request_id",),
    "pause": (),
    "stop": ("block", "timeout", "hard_stop"),
}


class ContinuousUnavailable(RuntimeError):
    """This model or this transformers cannot run continuous batching here (the message says why)."""


def cache_tokens() -> int:
    """KV-cache capacity in tokens shared by all running rows: ``$BDC_LOCAL_CB_TOKENS`` or 16384."""
    env = os.environ.get("BDC_LOCAL_CB_TOKENS", "")
    return max(PAGE_SIZE, int(env)) if env.isdigit() else 16384


def warmup_seconds() -> float:
    """Bound on the start-up check's generate: ``$BDC_LOCAL_WARMUP_S`` or 120 (a loaded CPU is slow)."""
    try:
        return max(1.0, float(os.environ.get("BDC_LOCAL_WARMUP_S", "120")))
    except ValueError:
        return 120.0


def supports_continuous(model: Any) -> bool:
    """Whether transformers' continuous batching can drive ``model`` with its current attention."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None) or ""
    # eager would be switched to paged|eager on the shared model, breaking the fallback's plain generate
    return hasattr(model, "init_continuous_batching") and (impl == "sdpa" or "flash" in impl)


def incompatibility(obj: Any, entry_points: dict[str, tuple[str, ...]]) -> str | None:
    """Why ``obj`` does not offer ``entry_points`` as this module calls them, or None."""
    kind = type(obj).__name__
    for name, kwargs in entry_points.items():
        fn = getattr(obj, name, None)
        if not callable(fn):
            return f"{kind}.{name} is missing"
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue  # a builtin without a signature: the warm-up generate will tell
        try:
            sig.bind(**{k: None for k in kwargs})
        except TypeError as e:
            return f"{kind}.{name}{sig} cannot be called as {name}({', '.join(kwargs)}): {e}"
    return None


@dataclass
class _Row:
    req: GenRequest
    peak: int  # most rows in flight at once during this row's life (GenResult.batch_size)


class ContinuousBatcher:
    """Owns a model and tokenizer; ``submit`` is thread-safe and returns a Future[GenResult].

    ``batches_run`` counts busy periods (the engine going from idle to working): a request that
    joins a running batch does not start a new one, exactly as DynamicBatcher counts ``generate``
    calls. ``steps`` is the number of forward passes; ``fallback`` the DynamicBatcher used for
    sampled, oversized or failed-over requests (None until one arrives); ``broken`` why the paged
    engine no longer takes calls (None while it does). Raises ``ContinuousUnavailable`` when the
    start-up check fails: an entry point missing or changed, or the warm-up generate failing.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch: int = 8,
        wait_s: float = 0.01,
        threads: int | None = None,
        capacity_tokens: int | None = None,
        max_batch_tokens: int = 512,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.threads = threads if threads is not None else default_threads()
        self.batches_run = 0
        self.tokens_streamed = 0  # generated tokens seen so far (progress, for tests and stats)
        self.fallback: DynamicBatcher | None = None
        self.generation_threads = 0  # intra-op threads the generation thread starts with
        self.broken: str | None = None
        self._warming = False
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}
        self._counter = 0
        self._closed = False
        self.eos_ids = eos_ids(model, tokenizer)
        self.pad_id = pad_id(tokenizer)
        blocks = max(1, (capacity_tokens or cache_tokens()) // PAGE_SIZE)
        self.capacity = blocks * PAGE_SIZE
        why = incompatibility(model, MODEL_ENTRY_POINTS)
        if why is not None:
            raise ContinuousUnavailable(why)
        self._mgr = model.init_continuous_batching(
            generation_config=self._generation_config(),
            continuous_batching_config=self._config(blocks, max_batch, max_batch_tokens),
        )
        why = incompatibility(self._mgr, MANAGER_ENTRY_POINTS)
        if why is not None:
            raise ContinuousUnavailable(why)
        self._start_manager()
        self._dispatcher = threading.Thread(target=self._dispatch, name="bdc-local-continuous", daemon=True)
        self._dispatcher.start()
        self._warm_up(warmup_seconds())
        with self._lock:  # the counters describe the callers' work, not the check's
            self.batches_run = 0
            self.tokens_streamed = 0

    def _generation_config(self) -> Any:
        gen = copy.deepcopy(getattr(self.model, "generation_config", None))
        if gen is None:
            from transformers import GenerationConfig

            gen = GenerationConfig()
        # the same greedy settings DynamicBatcher passes to generate (a model's own sampling defaults are off)
        gen.do_sample, gen.temperature, gen.top_p, gen.top_k = False, None, None, None
        gen.max_new_tokens = 256
        gen.eos_token_id = sorted(self.eos_ids) if self.eos_ids else -1
        gen.pad_token_id = self.pad_id
        return gen

    @staticmethod
    def _config(blocks: int, max_batch: int, max_batch_tokens: int) -> Any:
        from transformers import ContinuousBatchingConfig

        try:
            return ContinuousBatchingConfig(
                page_size=PAGE_SIZE,
                num_blocks=blocks,
                max_batch_tokens=max_batch_tokens,
                max_requests_per_batch=max_batch,
                allow_block_sharing=False,
                auto_switch_to_flash=False,
                use_async_batching=False,
                use_cuda_graph=False,
            )
        except TypeError as e:
            raise ContinuousUnavailable(f"ContinuousBatchingConfig changed: {e}") from e

    def _start_manager(self) -> None:
        """``manager.start()`` from a short-lived daemon thread with our intra-op thread count.

        A thread inherits daemon status from the thread that creates it, and torch's intra-op
        thread count and inference mode are read there too: so the manager's generation thread is
        a daemon (a process that forgot ``close`` still exits), runs ``threads`` OpenMP threads
        like DynamicBatcher's worker, and runs in inference mode, all through its public ``start``.
        """
        errors: list[BaseException] = []

        def starter() -> None:
            import torch

            try:
                if self.threads:
                    torch.set_num_threads(self.threads)
                self.generation_threads = torch.get_num_threads()
                with torch.inference_mode():
                    self._mgr.start()
            except BaseException as e:  # noqa: BLE001 - reported by the caller
                errors.append(e)

        t = threading.Thread(target=starter, name="bdc-local-cb-start", daemon=True)
        t.start()
        t.join(timeout=30)
        if errors or t.is_alive():
            why = f"{type(errors[0]).__name__}: {errors[0]}" if errors else "start() did not return in 30 s"
            raise ContinuousUnavailable(f"the continuous batching manager did not start: {why}")

    def _warm_up(self, timeout_s: float) -> None:
        """A real greedy generate of ``WARMUP_TOKENS`` tokens through every entry point we use, and a pause."""
        ids = list(self.tokenizer("def f():", add_special_tokens=False)["input_ids"]) or [self.pad_id]
        self._warming = True
        try:
            res = self.submit(GenRequest(ids, WARMUP_TOKENS)).result(timeout=timeout_s)
            if self.broken is not None:
                raise ContinuousUnavailable(self.broken)
            if not (
                isinstance(res, GenResult)
                and len(res.token_ids) <= WARMUP_TOKENS
                and res.finish_reason in ("stop", "length")
                and all(isinstance(t, int) for t in res.token_ids)
            ):
                raise ContinuousUnavailable(f"the warm-up generate returned {res!r}")
            self._check_pause(timeout_s)
            self._warming = False
        except BaseException as e:
            self.close(timeout=STOP_WAIT_S)
            if isinstance(e, ContinuousUnavailable):
                raise
            if isinstance(e, concurrent.futures.TimeoutError):
                raise ContinuousUnavailable(f"the warm-up generate gave no answer in {timeout_s:.0f} s") from e
            raise ContinuousUnavailable(f"the warm-up generate failed: {type(e).__name__}: {e}") from e

    def _check_pause(self, timeout_s: float) -> None:
        done = threading.Event()
        errors: list[BaseException] = []

        def pause() -> None:
            try:
                with self._mgr.pause():
                    pass
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
            finally:
                done.set()

        threading.Thread(target=pause, name="bdc-local-cb-pause-check", daemon=True).start()
        if not done.wait(timeout_s):
            raise ContinuousUnavailable(f"pause() did not return in {timeout_s:.0f} s")
        if errors:
            raise ContinuousUnavailable(f"pause() failed: {type(errors[0]).__name__}: {errors[0]}")

    @property
    def steps(self) -> int:
        return int(getattr(self._mgr, "current_batch", 0) or 0)

    @property
    def progress(self) -> int:
        return self.steps + self.tokens_streamed + (self.fallback.progress if self.fallback is not None else 0)

    def failure(self) -> str | None:
        """Why calls cannot be answered any more, or None: a broken engine still answers through the
        fallback, so only the fallback's own death or a dead dispatcher count."""
        if self.fallback is not None and (why := self.fallback.failure()) is not None:
            return why
        if not self._closed and not self._dispatcher.is_alive() and self.broken is None:
            return "the continuous batching dispatcher thread exited unexpectedly"
        return None

    def abandon(self, why: str) -> None:
        """The watchdog saw no progress: stop taking calls on the paged engine (its thread is stuck)."""
        self._break(f"no progress: {why}")

    # -- callers' side ---------------------------------------------------------------------------
    def submit(self, req: GenRequest) -> concurrent.futures.Future:
        if self._closed:
            raise LocalGenerationError("batcher is closed")
        too_big = len(req.prompt_ids) + req.max_new_tokens > self.capacity
        if req.temperature > 0 or too_big or self.broken is not None:
            return self._fallback().submit(req)
        with self._lock:
            if self.broken is not None:  # broke a moment ago: its rows went to the fallback already
                rid = None
            else:
                rid = f"bdc-{self._counter}"
                self._counter += 1
                if not self._rows:
                    self.batches_run += 1
                self._rows[rid] = _Row(req, len(self._rows) + 1)
                for row in self._rows.values():
                    row.peak = max(row.peak, len(self._rows))
        if rid is None:
            return self._fallback().submit(req)
        try:
            added = self._mgr.add_request(
                list(req.prompt_ids),
                request_id=rid,
                max_new_tokens=req.max_new_tokens,
                streaming=True,
                eos_token_id=sorted(self.eos_ids) if self.eos_ids else -1,
            )
        except Exception as e:  # noqa: BLE001 - the engine refused it: its rows (this one too) move on
            self._break(f"add_request failed: {type(e).__name__}: {e}")
        else:
            if added is None:  # the manager is stopping or dead; a thread on its way out ends within moments
                deadline = time.monotonic() + 1.0
                while self._mgr.is_running() and time.monotonic() < deadline:
                    time.sleep(0.01)
                self._break(self._engine_failure() or "the continuous batching engine refused a call (stopping)")
        return req.future

    def _fallback(self) -> DynamicBatcher:
        with self._lock:
            if self.fallback is None:
                self.fallback = DynamicBatcher(
                    self.model,
                    self.tokenizer,
                    max_batch=self.max_batch,
                    wait_s=self.wait_s,
                    threads=self.threads,
                    guard=self._exclusive,
                )
            return self.fallback

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """The model to ourselves: the manager's loop paused (if it still runs) until we are done.

        A broken engine's thread is given ``STOP_WAIT_S`` to end; one that is still running then
        (stuck in a forward pass) makes the model unsafe to share, and the call fails saying so.
        """
        if self.broken is not None:
            deadline = time.monotonic() + STOP_WAIT_S
            while self._mgr.is_running() and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._mgr.is_running():
                raise LocalGenerationError(
                    f"continuous batching is stuck ({self.broken}) and still holds the model: restart bdc"
                )
            yield
        elif self._mgr.is_running():
            with self._mgr.pause():
                yield
        else:
            yield

    def close(self, timeout: float = 30) -> None:
        if self._closed:
            return
        self._closed = True
        if self.fallback is not None:  # first: its generate calls need the manager's pause
            self.fallback.close()
        with contextlib.suppress(Exception):  # a broken manager must not keep its rows waiting
            self._mgr.stop(block=True, timeout=timeout, hard_stop=True)  # rows still running fail, like a cancel
        self._dispatcher.join(timeout=timeout)
        self._fail_all(LocalGenerationError("batcher is closed"))

    # -- dispatcher thread -----------------------------------------------------------------------
    def _dispatch(self) -> None:
        try:
            self._dispatch_loop()
        except BaseException as e:  # noqa: BLE001 - nobody reads the manager any more: move the rows
            self._break(f"the continuous batching dispatcher died: {type(e).__name__}: {e}")
            log.debug("continuous batching dispatcher", exc_info=True)

    def _dispatch_loop(self) -> None:
        mgr = self._mgr
        while True:
            out = mgr.get_result(timeout=0.05)
            if out is not None:
                self._handle(out)
                continue
            if self._closed:
                return
            why = self._engine_failure()
            if why is not None:
                self._break(why)
                return

    def _engine_failure(self) -> str | None:
        fatal = getattr(getattr(self._mgr, "background_thread_status", None), "fatal_error", None)
        if fatal is not None:
            return f"the continuous batching engine failed: {type(fatal).__name__}: {fatal}"
        if not self._mgr.is_running():
            return "the continuous batching generation thread exited"
        return None

    def _break(self, why: str) -> None:
        """Stop using the paged engine: its rows in flight and every later call go to the fallback."""
        with self._lock:
            if self.broken is not None:
                return
            self.broken = why
            rows = list(self._rows.values())
            self._rows.clear()
        if self._closed:
            return
        if self._warming:  # the start-up check fails with the reason; the engine logs it once
            for row in rows:
                if claim(row.req.future):
                    deliver(row.req.future, error=LocalGenerationError(why))
            return
        log.warning(
            "continuous batching stopped (%s): calls go to dynamic batching (%d in flight moved)", why, len(rows)
        )
        for row in rows:
            if not row.req.future.done():
                self._fallback().submit(row.req)

    def _handle(self, out: Any) -> None:
        rid = out.request_id
        with self._lock:
            row = self._rows.get(rid)
        if row is None:  # already answered (loop cut or cancelled); the manager's late outputs are dropped
            return
        try:
            self._answer(rid, row, out)
        except Exception as e:  # noqa: BLE001 - one bad output fails its own row, not the dispatcher
            self._finish(
                rid, error=LocalGenerationError(f"continuous batching output unreadable: {type(e).__name__}: {e}")
            )

    def _answer(self, rid: str, row: _Row, out: Any) -> None:
        if out.error:
            self._finish(rid, error=LocalGenerationError(f"generation failed: {out.error}"))
            return
        tokens = list(out.generated_tokens)
        self.tokens_streamed += 1
        if not out.is_finished():
            if row.req.future.cancelled() or row.req.future.done():  # cancelled, or failed by the watchdog
                self._mgr.cancel_request(rid)
                self._finish(rid)
            elif len(tokens) >= REPEAT_WINDOW and loops(tokens):
                self._mgr.cancel_request(rid)
                self._finish(rid, result=self._result(row, tokens, looped_at=len(tokens)))
            elif step_row(self.tokenizer, row.req, tokens):  # reached a stop sequence
                self._mgr.cancel_request(rid)
                self._finish(rid, result=self._result(row, tokens, looped_at=None))
            return
        looped = len(tokens[: row.req.max_new_tokens])
        self._finish(rid, result=self._result(row, tokens, looped_at=looped if loops(tokens[:looped]) else None))

    def _result(self, row: _Row, tokens: list[int], *, looped_at: int | None) -> GenResult:
        return finish_row(self.tokenizer, row.req, tokens, self.eos_ids, row.peak, looped_at)

    def _finish(self, rid: str, *, result: GenResult | None = None, error: BaseException | None = None) -> None:
        with self._lock:
            row = self._rows.pop(rid, None)
        if row is None or not claim(row.req.future):
            return
        if error is None and result is None:
            error = LocalGenerationError("request ended without a result")
        deliver(row.req.future, result=result, error=error)

    def _fail_all(self, error: BaseException) -> None:
        with self._lock:
            left = list(self._rows)
        for rid in left:
            self._finish(rid, error=error)
