"""What every local batcher shares: the request and result of one row, how a row is finished, and
the protocol a batcher offers to the engine.

Both batchers (``DynamicBatcher``: one ``generate`` per group of requests; ``ContinuousBatcher``:
rows join and leave a running batch) answer a row the same way, through ``finish_row``: the
tokens are cut at the row's own ``max_new_tokens``, then at its first end-of-sequence token
(``stop``), else at the point where it fell into a loop (``repetition``), else it ran to its limit
(``length``). Small models often loop (``()()()()...`` until the token limit; seen with
SmolLM2-135M on HumanEval), and a loop never turns back into a usable reply, so the last
``REPEAT_WINDOW`` tokens repeating with a period of at most ``REPEAT_MAX_PERIOD`` end the row.

A row's future can be answered by its batcher or, first, by the engine's watchdog (a stalled or
dead generation thread); ``claim`` and ``deliver`` make the second answer a no-op instead of an
``InvalidStateError`` that would kill the batcher's thread.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

# a row whose last REPEAT_WINDOW generated tokens are periodic with period <= REPEAT_MAX_PERIOD
# is stuck in a loop: 96 tokens are 8+ exact repeats of one short phrase, which real code and
# prose do not produce (a literal like [0, 0, 0, ...] needs 48 equal elements to trip it).
REPEAT_WINDOW = 96
REPEAT_MAX_PERIOD = 12


class LocalGenerationError(RuntimeError):
    """A local call that cannot be answered: its generation thread died, stalled, or was closed."""


@dataclass
class GenRequest:
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    stop: tuple[str, ...] = ()  # stop sequences: the reply ends before the first one (left out, as OpenAI does)
    on_tokens: Callable[[int], None] | None = None  # generated-token count so far (from the generation thread)

    @property
    def sampling_key(self) -> tuple:
        return (False,) if self.temperature <= 0 else (True, round(self.temperature, 4), round(self.top_p, 4))


@dataclass
class GenResult:
    token_ids: list[int]
    text: str
    prompt_tokens: int
    batch_size: int  # how many requests shared the batch (for tests and stats)
    finish_reason: str = "stop"  # stop (end of sequence), length (max_new_tokens) or repetition


class Batcher(Protocol):
    """What ``LocalEngine`` needs from a batcher.

    ``progress`` grows with every decode step (the watchdog's sign of life); ``failure()`` is why
    the batcher can no longer answer (its thread died), or None; ``abandon(why)`` is the watchdog
    telling it that its generation made no progress for too long.
    """

    batches_run: int

    @property
    def progress(self) -> int: ...

    def submit(self, req: GenRequest) -> concurrent.futures.Future: ...

    def failure(self) -> str | None: ...

    def abandon(self, why: str) -> None: ...

    def close(self) -> None: ...


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


def loops(tokens: list[int], window: int = REPEAT_WINDOW, max_period: int = REPEAT_MAX_PERIOD) -> bool:
    """Whether one row's generated tokens end in a loop: ``looping`` for one row, in plain Python (it runs
    once per token of the llama.cpp engine, which needs no torch)."""
    if len(tokens) < window:
        return False
    tail = tokens[-window:]
    return any(tail[p:] == tail[:-p] for p in range(1, max_period + 1))


def report_tokens(req: GenRequest, n: int) -> None:
    """Tell the caller how many tokens its row has so far; a failing reporter never hurts the row."""
    if req.on_tokens is not None:
        try:
            req.on_tokens(n)
        except Exception:  # noqa: BLE001 - progress is best effort, generation goes on
            req.on_tokens = None


def cut_at_stop(text: str, stop: Collection[str]) -> str | None:
    """``text`` before its first stop sequence, or None when it has none."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[: min(cuts)] if cuts else None


def hit_stop(tokenizer: Any, req: GenRequest, tokens: list[int]) -> bool:
    """Whether the newest tokens of a row completed one of its stop sequences (checked on a short
    decoded tail each step, so the cost does not grow with the reply)."""
    if not req.stop:
        return False
    tail = tokenizer.decode(tokens[-(max(len(s) for s in req.stop) + 4) :], skip_special_tokens=True)
    return cut_at_stop(tail, req.stop) is not None


def step_row(tokenizer: Any, req: GenRequest, tokens: list[int]) -> bool:
    """Once per decode step of a row: report its progress; True when it should stop (stop sequence)."""
    report_tokens(req, len(tokens))
    return hit_stop(tokenizer, req, tokens)


def finish_row(
    tokenizer: Any,
    req: GenRequest,
    tokens: list[int],
    eos_ids: Collection[int],
    batch_size: int,
    looped_at: int | None = None,
) -> GenResult:
    """The one way a row is answered. ``looped_at``: generated length at which the loop guard fired."""
    tokens = list(tokens[: req.max_new_tokens])
    cut = next((j for j, t in enumerate(tokens) if t in eos_ids), None)
    if cut is not None:
        tokens, reason = tokens[:cut], "stop"
    elif looped_at is not None:
        tokens, reason = tokens[:looped_at], "repetition"
    else:
        reason = "length"
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    stopped = cut_at_stop(text, req.stop) if req.stop else None
    if stopped is not None:
        text, reason = stopped, "stop"
    report_tokens(req, len(tokens))
    return GenResult(tokens, text, len(req.prompt_ids), batch_size, reason)


def claim(fut: concurrent.futures.Future) -> bool:
    """Mark a row's future running; False when it was cancelled or already answered (watchdog)."""
    try:
        return fut.set_running_or_notify_cancel()
    except RuntimeError:  # already finished
        return False


def deliver(fut: concurrent.futures.Future, *, result: Any = None, error: BaseException | None = None) -> bool:
    """Answer a future once; False when someone answered it first."""
    try:
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)
        return True
    except concurrent.futures.InvalidStateError:
        return False


class QueuedWorker:
    """What a batcher with one worker thread and a request queue shares: submit, close, and failing every
    waiter at once when that thread dies (``failure()`` then names why, for the watchdog and later calls).

    A subclass calls ``_start_worker(what)`` at the end of its ``__init__`` and implements ``_loop``
    (take requests off ``_q`` until ``None``); ``what`` names the thread in messages."""

    _q: queue.Queue[GenRequest | None]
    _thread: threading.Thread
    _what = "worker"

    def _start_worker(self, what: str, thread_name: str) -> None:
        self._what = what
        self._q = queue.Queue()
        self._closed = False
        self._died: str | None = None
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    def failure(self) -> str | None:
        """Why this batcher cannot answer any more (its thread is gone), or None."""
        if self._died is not None:
            return self._died
        if not self._closed and not self._thread.is_alive():
            return f"the {self._what} thread exited unexpectedly"
        return None

    def submit(self, req: GenRequest) -> concurrent.futures.Future:
        if self._closed:
            raise LocalGenerationError("batcher is closed")
        why = self.failure()
        if why is not None:
            deliver(req.future, error=LocalGenerationError(why))
            return req.future
        self._q.put(req)
        return req.future

    def close(self) -> None:
        self._closed = True
        self._q.put(None)
        self._thread.join(timeout=30)
        self._fail_queued(LocalGenerationError("batcher is closed"))

    def _loop(self) -> None:
        raise NotImplementedError

    def _running(self) -> list[GenRequest]:
        """Requests taken off the queue and not yet answered (failed with the rest when the thread dies)."""
        return []

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # noqa: BLE001 - the thread is gone: say why to every waiter, now and later
            self._died = f"the {self._what} thread died: {type(e).__name__}: {e}"
            for r in self._running():
                deliver(r.future, error=LocalGenerationError(self._died))
            self._fail_queued(LocalGenerationError(self._died))
            log.warning("%s", self._died)
            log.debug("%s thread", self._what, exc_info=True)

    def _fail_queued(self, error: BaseException) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item is not None and claim(item.future):
                deliver(item.future, error=error)
