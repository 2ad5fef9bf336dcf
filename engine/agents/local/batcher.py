"""Dynamic batching of generation requests onto one worker thread.

The search fires many calls at once (every policy, every child). On a CPU or a single GPU,
one left-padded ``generate`` over N prompts costs little more than one prompt, because small
models are bound by per-step overhead rather than arithmetic. The batcher collects whatever
requests arrive within a short window (``wait_s``), runs them as one batch, and hands every
caller its own completion through a thread-safe future (usable from any event loop).

Requests are grouped by sampling settings (greedy vs. temperature/top_p) because one
``generate`` call takes one set of them. Each row stops on its own (a per-row stopping
criterion), so the batch ends as soon as every row is done rather than at the longest
``max_new_tokens``: at its end-of-sequence token, at its own ``max_new_tokens``, or when it
has fallen into a loop; ``rows.finish_row`` answers it.

Nothing waits forever on this thread: if it dies, every queued and later request fails at once
with the reason (``failure()``), and the engine's watchdog reads ``progress`` (one tick per
decode step) to end calls whose generation stalls.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import time
from collections.abc import Callable, Collection
from typing import Any

from engine.agents.local.rows import (
    GenRequest,
    GenResult,
    QueuedWorker,
    claim,
    deliver,
    finish_row,
    looping,
    step_row,
)

log = logging.getLogger(__name__)


def default_threads() -> int:
    """Intra-op threads for generation: ``$BDC_LOCAL_THREADS``, else half the cores.

    The search runs sandbox subprocesses next to generation; OpenMP threads that spin-wait on a
    busy machine slow every op down (measured 3-7x on a loaded 2-core box with 2 threads vs 1),
    so generation leaves half the cores to the rest of the work by default.
    """
    env = os.environ.get("BDC_LOCAL_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 2) // 2)


def pad_id(tokenizer: Any) -> int:
    """The padding token: the tokenizer's, else its end-of-sequence token, else 0."""
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    return int(pad)


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every end-of-sequence token of the model's generation config and of the tokenizer."""
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for v in (gen_eos, tokenizer.eos_token_id):
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v)
    return ids


class DynamicBatcher(QueuedWorker):
    """Owns a model and tokenizer; ``submit`` is thread-safe and returns a Future[GenResult].

    ``guard`` (a context-manager factory) wraps every ``generate``: a ContinuousBatcher sharing the
    model passes its manager's pause, because two threads must never run the model at once (a
    forward pass of one batch must not interleave with another's on the same modules).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch: int = 8,
        wait_s: float = 0.01,
        threads: int | None = None,
        guard: Callable[[], Any] | None = None,
    ) -> None:
        self.model = model
        self.guard = guard or contextlib.nullcontext
        self.threads = threads if threads is not None else default_threads()
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batches_run = 0
        self.steps = 0  # decode steps run (the watchdog's sign of life)
        self.pad_id = pad_id(tokenizer)
        self.eos_ids = eos_ids(model, tokenizer)
        self._start_worker("dynamic batching", "bdc-local-generate")

    @property
    def progress(self) -> int:
        return self.steps + self.batches_run

    def abandon(self, why: str) -> None:
        """Nothing to give up: a stalled ``generate`` cannot be interrupted, its rows were failed by the
        watchdog, and the thread answers later requests once (if ever) that call returns."""

    # -- worker thread -------------------------------------------------------------------------
    def _collect(self, first: GenRequest) -> tuple[list[GenRequest], bool]:
        batch = [first]
        stop = False
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._q.get(timeout=remaining) if remaining > 0 else self._q.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _loop(self) -> None:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)  # OpenMP: applies to this worker thread's ops
        while True:
            first = self._q.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            groups: dict[tuple, list[GenRequest]] = {}
            for r in batch:
                groups.setdefault(r.sampling_key, []).append(r)
            for reqs in groups.values():
                live = [r for r in reqs if claim(r.future)]
                if not live:
                    continue
                try:
                    results = self._generate(live)
                except Exception as e:  # noqa: BLE001 - delivered to every waiting caller
                    for r in live:
                        deliver(r.future, error=e)
                else:
                    for r, res in zip(live, results):
                        deliver(r.future, result=res)
            if stop:
                return

    def _step(self) -> None:
        self.steps += 1

    def _row_step(self, reqs: list[GenRequest]) -> Callable[[int, list[int]], bool] | None:
        """Per row and step: progress report and stop-sequence check (None when no row needs them)."""
        if not any(r.stop or r.on_tokens for r in reqs):
            return None
        return lambda i, tokens: step_row(self.tokenizer, reqs[i], tokens)

    def _generate(self, reqs: list[GenRequest]) -> list[GenResult]:
        import torch

        width = max(len(r.prompt_ids) for r in reqs)
        input_ids = torch.full((len(reqs), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(reqs), width), dtype=torch.long)
        for i, r in enumerate(reqs):
            n = len(r.prompt_ids)
            input_ids[i, width - n :] = torch.tensor(r.prompt_ids, dtype=torch.long)
            attention[i, width - n :] = 1
        first = reqs[0]
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(r.max_new_tokens for r in reqs),
            "pad_token_id": self.pad_id,
        }
        if first.temperature > 0:
            kwargs.update(do_sample=True, temperature=first.temperature, top_p=first.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        device = next(self.model.parameters()).device
        stops = _RowStops(
            width, [r.max_new_tokens for r in reqs], on_step=self._step, row_step=self._row_step(reqs), eos=self.eos_ids
        )
        with self.guard(), torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                stopping_criteria=[stops.criterion()],
                **kwargs,
            )
        self.batches_run += 1
        return [
            finish_row(self.tokenizer, r, out[i, width:].tolist(), self.eos_ids, len(reqs), stops.looped.get(i))
            for i, r in enumerate(reqs)
        ]


class _RowStops:
    """Per-row stopping for one batched ``generate``: a row is done at its own token limit or
    when it loops (``looped`` maps row -> generated length at that point). Rows that end with
    an end-of-sequence token are finished by ``generate`` itself. ``on_step`` runs every step."""

    def __init__(
        self,
        prompt_width: int,
        limits: list[int],
        on_step: Callable[[], None] | None = None,
        row_step: Callable[[int, list[int]], bool] | None = None,
        eos: Collection[int] = (),
    ) -> None:
        self.width = prompt_width
        self.limits = limits
        self.looped: dict[int, int] = {}
        self.on_step = on_step
        self.row_step = row_step  # (row, its tokens) -> it reached a stop sequence
        self.eos = set(eos)
        self.ended: set[int] = set()  # rows done: no more steps reported for them

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self.on_step is not None:
            self.on_step()
        gen = input_ids[:, self.width :]
        n = gen.shape[1]
        flags = [n >= lim for lim in self.limits]
        if self.row_step is not None:
            for i in range(len(flags)):
                if i in self.ended:
                    continue
                tokens = gen[i].tolist()
                if flags[i] or (tokens and tokens[-1] in self.eos):
                    self.ended.add(i)
                elif self.row_step(i, tokens):
                    flags[i] = True
                    self.ended.add(i)
        done = torch.tensor(flags, device=input_ids.device)
        loop = looping(gen)
        for i in loop.nonzero().flatten().tolist():
            if n <= self.limits[i]:  # past its limit a row's tokens are discarded anyway
                self.looped.setdefault(i, n)
        return done | loop

    def criterion(self) -> Any:
        from transformers import StoppingCriteria

        outer = self

        class _Criterion(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return outer(input_ids, scores, **kwargs)

        return _Criterion()
