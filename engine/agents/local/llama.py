"""The llama.cpp engine: a local GGUF model run natively (``llama_cpp.Llama``), behind the batcher protocol.

One ``Llama`` instance holds one KV cache and runs one generation at a time, so the calls the search
fires in parallel queue per model on one worker thread, exactly as ``rows.Batcher`` promises:
each call gets its own ``max_new_tokens``, stop sequences, loop guard and end-of-generation cut
(``rows.finish_row``), streams its token count to ``on_tokens``, and is greedy at temperature 0.
Nothing waits forever: a dead worker fails every queued and later call at once (``failure()``), the
engine's watchdog reads ``progress`` (one tick per generated token and per prompt) and calls
``abandon`` when it stalls, which ends the running generation at its next token.

Prefix reuse comes with the engine: ``Llama.generate`` keeps the KV cache of the previous prompt and
its reply and evaluates only the tokens after the longest common prefix. Calls about one problem
share the system prompt and the statement, so a call that follows another about the same problem
skips most of its prefill; ``prefix_tokens_reused`` counts what was saved (bench/local_engines.py
measures it). So the queue is served prefix-first: the next call is the waiting one that shares the
longest prefix with what the cache holds (the oldest among equals), but a call passed over
``MAX_PASSED_OVER`` times goes next whatever it shares: nobody waits for ever behind another problem.

The chat template is the GGUF's own (``tokenizer.chat_template`` metadata, rendered by llama-cpp-python's
``Jinja2ChatFormatter``); a GGUF without one gets the plain ``role: content`` transcript the
transformers engine uses. Threads: ``batcher.default_threads()`` per model, as for transformers, so the
two models of the default pair share the machine's cores the same way.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.agents.local.batcher import default_threads
from engine.agents.local.rows import (
    GenRequest,
    GenResult,
    LocalGenerationError,
    QueuedWorker,
    claim,
    deliver,
    finish_row,
    loops,
    step_row,
)

log = logging.getLogger(__name__)

MAX_PASSED_OVER = 4  # how often the oldest waiting call may be passed over for one with a longer shared prefix
DEFAULT_CTX = 8192  # tokens of KV cache per model (Qwen2.5-0.5B: ~100 MB); prompts + replies of a search fit


class LlamaText:
    """The tokenizer method ``rows`` needs (``decode``), on a ``Llama`` instance."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def decode(self, tokens: Iterable[int], skip_special_tokens: bool = True) -> str:
        return self.llm.detokenize(list(tokens), special=not skip_special_tokens).decode("utf-8", errors="replace")


def end_of_generation_ids(llm: Any) -> set[int]:
    """Every token that ends a reply (EOS, EOT, <|im_end|>...): llama.cpp's own ``is_eog`` over the vocabulary."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    ids = {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, i)}
    return ids or {int(llm.token_eos())}


def chat_encoder(llm: Any):
    """``messages -> prompt token ids`` through the GGUF's chat template (plain transcript without one)."""
    template = (llm.metadata or {}).get("tokenizer.chat_template")
    if not template:

        def plain(messages: list[dict]) -> list[int]:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
            return list(llm.tokenize(text.encode(), add_bos=True, special=False))

        return plain
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    def piece(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", errors="replace") if token >= 0 else ""

    formatter = Jinja2ChatFormatter(template, eos_token=piece(llm.token_eos()), bos_token=piece(llm.token_bos()))

    def templated(messages: list[dict]) -> list[int]:
        prompt = formatter(messages=messages).prompt
        return list(llm.tokenize(prompt.encode(), add_bos=False, special=True))  # the template wrote its specials

    return templated


def open_gguf(path: str | Path, *, threads: int | None = None, n_ctx: int = DEFAULT_CTX) -> Any:
    """A ``llama_cpp.Llama`` on ``path`` (quiet: llama.cpp's logs stay off the terminal and the TUI)."""
    import llama_cpp

    n = threads if threads is not None else default_threads()
    return llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_threads=n,
        n_threads_batch=n,
        seed=0,
        verbose=False,
    )


class LlamaBatcher(QueuedWorker):
    """``rows.Batcher`` over one ``Llama``: calls queue and run one at a time on a worker thread."""

    def __init__(self, llm: Any, *, eos_ids: set[int] | None = None) -> None:
        self.llm = llm
        self.tokenizer = LlamaText(llm)
        self.eos_ids = eos_ids if eos_ids is not None else end_of_generation_ids(llm)
        self.n_ctx = int(llm.n_ctx())
        self.batches_run = 0  # generations run (one row each)
        self.steps = 0  # tokens generated (the watchdog's sign of life)
        self.prefix_tokens_reused = 0  # prompt tokens whose KV cache a call found in place
        self.prompt_tokens_seen = 0
        self._waiting: list[GenRequest] = []  # taken off the queue, not yet run (worker thread only)
        self._passed_over = 0  # times the oldest waiting call was passed over
        self._current: GenRequest | None = None
        self._abandoned: str | None = None
        self._start_worker("llama.cpp generation", "bdc-llama-generate")

    @property
    def progress(self) -> int:
        return self.steps + self.batches_run

    def abandon(self, why: str) -> None:
        """The watchdog failed the running call: end its generation at the next token."""
        self._abandoned = why

    # -- worker thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        while (current := self._next()) is not None:
            if not claim(current.future):
                continue
            self._current = current
            try:
                result = self._generate(current)
            except Exception as e:  # noqa: BLE001 - this call fails, the engine goes on
                deliver(current.future, error=e)
            else:
                deliver(current.future, result=result)
            self._current = None

    def _running(self) -> list[GenRequest]:
        return [self._current] if self._current is not None else []

    def _next(self) -> GenRequest | None:
        """The next call to run (None: closed): prefix-first with a bound on passing over the oldest."""
        while True:
            if not self._waiting:
                item = self._q.get()
                if item is None:
                    return None
                self._waiting.append(item)
            while True:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._q.put(None)  # close after the calls already waiting have been failed
                    return None
                self._waiting.append(item)
            self._waiting = [r for r in self._waiting if not r.future.done()]  # answered by the watchdog
            if not self._waiting:
                continue
            pick = 0
            if self._passed_over < MAX_PASSED_OVER and len(self._waiting) > 1:
                shared = [self.cached_prefix(r.prompt_ids) for r in self._waiting]
                pick = max(range(len(shared)), key=lambda i: (shared[i], -i))
            self._passed_over = self._passed_over + 1 if pick else 0
            return self._waiting.pop(pick)

    def _fail_queued(self, error: BaseException) -> None:
        waiting, self._waiting = self._waiting, []
        for item in waiting:
            if claim(item.future):
                deliver(item.future, error=error)
        super()._fail_queued(error)

    def cached_prefix(self, prompt: list[int]) -> int:
        """How many leading tokens of ``prompt`` the KV cache already holds (0 when unknown)."""
        held = getattr(self.llm, "input_ids", None)
        n = int(getattr(self.llm, "n_tokens", 0) or 0)
        if held is None or n <= 0:
            return 0
        same = 0
        for a, b in zip(held[:n].tolist(), prompt):
            if a != b:
                break
            same += 1
        return same

    def _generate(self, req: GenRequest) -> GenResult:
        prompt = req.prompt_ids
        room = self.n_ctx - len(prompt)
        if room < 1:
            raise LocalGenerationError(
                f"prompt of {len(prompt)} tokens does not fit the llama.cpp context window of {self.n_ctx} tokens"
            )
        limit = min(req.max_new_tokens, room)
        self.prefix_tokens_reused += self.cached_prefix(prompt)
        self.prompt_tokens_seen += len(prompt)
        self._abandoned = None
        greedy = req.temperature <= 0
        sampling = (
            {"temp": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0}
            if greedy
            else {"temp": req.temperature, "top_k": 0, "top_p": req.top_p, "min_p": 0.0}
        )
        tokens: list[int] = []
        looped_at: int | None = None
        self.batches_run += 1  # the prompt is in: a sign of life before the first token
        for token in self.llm.generate(prompt, repeat_penalty=1.0, reset=True, **sampling):
            self.steps += 1
            if self._abandoned is not None:
                raise LocalGenerationError(self._abandoned)
            tokens.append(int(token))
            if token in self.eos_ids or len(tokens) >= limit:
                break
            if step_row(self.tokenizer, req, tokens):  # progress, stop sequences
                break
            if loops(tokens):
                looped_at = len(tokens)
                break
        return finish_row(self.tokenizer, req, tokens, self.eos_ids, 1, looped_at)
