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
has fallen into a loop. Small models often do (``()()()()...`` until the token limit; seen
with SmolLM2-135M on HumanEval), and a loop never turns back into a usable reply, so the
last ``REPEAT_WINDOW`` tokens repeating with a period of at most ``REPEAT_MAX_PERIOD`` end
the row early (``finish_reason`` ``repetition``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# a row whose last REPEAT_WINDOW generated tokens are periodic with period <= REPEAT_MAX_PERIOD
# is stuck in a loop: 96 tokens are 8+ exact repeats of one short phrase, which real code and
# prose do not produce (a literal like [0, 0, 0, ...] needs 48 equal elements to trip it).
REPEAT_WINDOW = 96
REPEAT_MAX_PERIOD = 12


def looping(tokens: Any, window: int = REPEAT_WINDOW, max_period: int = REPEAT_MAX_PERIOD) -> Any:
    """Per row of a (B, T) token tensor: are its last ``window`` tokens periodic (period <= max_period)?"""
    import torch

    if tokens.shape[1] < window:
        return torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    tail = tokens[:, -window:]
    hit = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    for p in range(1, max_period + 1):
        hit |= (tail[:, p:] == tail[:, :-p]).all(dim=1)
    return hit


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


@dataclass
class GenRequest:
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)

    @property
    def sampling_key(self) -> tuple:
        return (False,) if self.temperature <= 0 else (True, round(self.temperature, 4), round(self.top_p, 4))


@dataclass
class GenResult:
    token_ids: list[int]
    text: str
    prompt_tokens: int
    batch_size: int  # how many requests shared the generate call (for tests and stats)
    finish_reason: str = "stop"  # stop (end of sequence), length (max_new_tokens) or repetition


class DynamicBatcher:
    """Owns a model and tokenizer; ``submit`` is thread-safe and returns a Future[GenResult].

    ``guard`` (a context-manager factory) wraps every ``generate``: a ContinuousBatcher sharing the
    model passes its manager's pause, because two threads must never run the model at once (a
    forward pass flips ``model.config.is_causal`` for its duration, so a concurrent one runs with
    the wrong attention mask and can leave the flag flipped for good).
    """

    def __init__(
        self, model: Any, tokenizer: Any, *, max_batch: int = 8, wait_s: float = 0.01, threads: int | None = None,
        guard: Callable[[], Any] | None = None,
    ) -> None:
        self.model = model
        self.guard = guard or contextlib.nullcontext
        self.threads = threads if threads is not None else default_threads()
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batches_run = 0
        self._q: queue.Queue[GenRequest | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="bdc-local-generate", daemon=True)
        self._closed = False
        self._thread.start()
        self.pad_id = pad_id(tokenizer)
        self.eos_ids = eos_ids(model, tokenizer)

    def submit(self, req: GenRequest) -> concurrent.futures.Future:
        if self._closed:
            raise RuntimeError("batcher is closed")
        self._q.put(req)
        return req.future

    def close(self) -> None:
        self._closed = True
        self._q.put(None)
        self._thread.join(timeout=30)

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
                live = [r for r in reqs if r.future.set_running_or_notify_cancel()]
                if not live:
                    continue
                try:
                    results = self._generate(live)
                except BaseException as e:  # noqa: BLE001 - delivered to every waiting caller
                    for r in live:
                        r.future.set_exception(e)
                else:
                    for r, res in zip(live, results):
                        r.future.set_result(res)
            if stop:
                return

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
        stops = _RowStops(width, [r.max_new_tokens for r in reqs])
        with self.guard(), torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device),
                stopping_criteria=[stops.criterion()], **kwargs,
            )
        self.batches_run += 1
        results = []
        for i, r in enumerate(reqs):
            gen = out[i, width:].tolist()[: r.max_new_tokens]
            cut = next((j for j, t in enumerate(gen) if t in self.eos_ids), None)
            if cut is not None:
                gen, reason = gen[:cut], "stop"
            elif i in stops.looped:
                gen, reason = gen[: stops.looped[i]], "repetition"
            else:
                reason = "length"
            text = self.tokenizer.decode(gen, skip_special_tokens=True)
            results.append(GenResult(gen, text, len(r.prompt_ids), len(reqs), reason))
        return results


class _RowStops:
    """Per-row stopping for one batched ``generate``: a row is done at its own token limit or
    when it loops (``looped`` maps row -> generated length at that point). Rows that end with
    an end-of-sequence token are finished by ``generate`` itself."""

    def __init__(self, prompt_width: int, limits: list[int]) -> None:
        self.width = prompt_width
        self.limits = limits
        self.looped: dict[int, int] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        gen = input_ids[:, self.width :]
        n = gen.shape[1]
        done = torch.tensor([n >= lim for lim in self.limits], device=input_ids.device)
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
