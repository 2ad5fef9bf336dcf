"""The ``local`` litellm provider: ``local/<name|folder|file.gguf|hub-id>`` runs in process.

Registered in ``litellm.custom_provider_map`` so a local model is just another model string
for the rest of bdc (same client, cache, budget and recording). Each distinct model is loaded
once per process, on first use, in a worker thread so the event loop never blocks; its
batcher turns concurrent requests into batched generation: continuous batching (requests join
and leave the running batch at every step) when the model supports it, else the DynamicBatcher
(one ``generate`` per group of requests that arrive together). ``BDC_LOCAL_BATCHING=continuous|dynamic``
forces one. A continuous batcher that fails its start-up check (``ContinuousUnavailable``: an
incompatible transformers, a warm-up generate that fails or never answers) leaves dynamic batching,
with one log line saying why. Every call is watched (``watchdog.Watchdog``): a dead or stalled
generation thread fails its waiters with the reason instead of leaving them waiting.

Two engines run a model (``engines.resolve_engine``): llama.cpp on the catalog's GGUF files when the
``bdc[llama]`` extra is installed (``llama.LlamaBatcher``: one generation at a time per model, the KV
cache of the previous prompt reused), else transformers with the batchers above. A local agent's spec
may pin one (``extra["local_engine"]``, which ``bdc search`` writes into the run config).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.agents.local.batcher import DynamicBatcher
from engine.agents.local.engines import LLAMA, SPEC_KEY, note_fallback, resolve_engine
from engine.agents.local.llama import LlamaBatcher
from engine.agents.local.rows import Batcher, GenRequest, GenResult
from engine.agents.local.watchdog import Watchdog
from engine.agents.progress import REPORT_TOKENS

log = logging.getLogger(__name__)
BATCHING_MODES = ("continuous", "dynamic")
DEFAULT_BATCHING = "continuous"  # bench/local_generation.py: staggered calls 1.7x lower latency, same replies


def batching_mode() -> str:
    """``$BDC_LOCAL_BATCHING`` when it names a mode, else the default."""
    env = os.environ.get("BDC_LOCAL_BATCHING", "").strip().lower()
    return env if env in BATCHING_MODES else DEFAULT_BATCHING


_engines: dict[tuple[str, str], LocalEngine] = {}  # (source, engine asked for | "*" for set_engine)
_engines_lock = threading.Lock()


class LocalEngine:
    """A loaded model + tokenizer + batcher (``batching``: continuous | dynamic, default ``batching_mode()``;
    or a given ``batcher`` with its own ``encoder`` of messages, as the llama.cpp engine brings)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch: int = 8,
        wait_s: float = 0.01,
        batching: str | None = None,
        batcher: Batcher | None = None,
        encoder: Callable[[list[dict]], list[int]] | None = None,
    ) -> None:
        if getattr(tokenizer, "padding_side", None) is not None:
            tokenizer.padding_side = "left"
        self.tokenizer = tokenizer
        self.model = model
        self._encoder = encoder
        if batcher is None and (batching or batching_mode()) == "continuous":
            batcher = _continuous_or_none(model, tokenizer, max_batch=max_batch, wait_s=wait_s)
        self.batcher: Batcher = batcher or DynamicBatcher(model, tokenizer, max_batch=max_batch, wait_s=wait_s)
        self.watchdog = Watchdog(self.batcher)

    @property
    def engine(self) -> str:
        """``llama`` or ``transformers``: what runs the model."""
        return LLAMA if isinstance(self.batcher, LlamaBatcher) else "transformers"

    @property
    def batching(self) -> str:
        if isinstance(self.batcher, LlamaBatcher):
            return "one at a time"
        return "dynamic" if isinstance(self.batcher, DynamicBatcher) else "continuous"

    @classmethod
    def load(cls, source: str, engine: str | None = None) -> LocalEngine:
        """``source`` on ``engine`` (default: ``resolve_engine()``); a model llama.cpp cannot run goes to
        transformers with one log line."""
        from engine.agents.local.loader import gguf_source, load_model

        if resolve_engine(engine) == LLAMA:
            gguf, why = gguf_source(source)
            if gguf is not None:
                return cls.from_gguf(gguf)
            note_fallback(source, why)
        model, tok = load_model(source)
        return cls(model, tok)

    @classmethod
    def from_gguf(cls, path: str, *, threads: int | None = None) -> LocalEngine:
        """The llama.cpp engine on a GGUF file."""
        from engine.agents.local.llama import LlamaText, chat_encoder, open_gguf

        llm = open_gguf(path, threads=threads)
        return cls(None, LlamaText(llm), batcher=LlamaBatcher(llm), encoder=chat_encoder(llm))

    def encode(self, messages: list[dict]) -> list[int]:
        """Prompt token ids through the model's chat template (plain transcript without one)."""
        if self._encoder is not None:
            return self._encoder(messages)
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return list(tok(text, add_special_tokens=False)["input_ids"])
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        return list(tok(text)["input_ids"])

    def request(
        self,
        messages: list[dict],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: str | list[str] | None = None,
        on_tokens: Callable[[int], None] | None = None,
    ):
        """Submit one call; ``stop``: sequences that end the reply (left out of it); ``on_tokens``:
        told the generated-token count as it grows (from the generation thread)."""
        ids = self.encode(messages)
        stops = (stop,) if isinstance(stop, str) else tuple(s for s in (stop or ()) if s)
        req = GenRequest(
            ids, max(1, int(max_tokens)), float(temperature or 0.0), float(top_p), stop=stops, on_tokens=on_tokens
        )
        return self.watchdog.track(self.batcher.submit(req))

    async def agenerate(self, messages: list[dict], **kw: Any) -> GenResult:
        return await asyncio.wrap_future(self.request(messages, **kw))

    def close(self) -> None:
        self.watchdog.close()
        self.batcher.close()


def _continuous_or_none(model: Any, tokenizer: Any, **kw: Any) -> Batcher | None:
    """A ContinuousBatcher that passed its start-up check, or None (one log line) when the model or
    this transformers cannot run one."""
    try:
        from engine.agents.local.continuous import ContinuousBatcher, supports_continuous

        if not supports_continuous(model):
            impl = getattr(model.config, "_attn_implementation", None)
            log.info("continuous batching needs sdpa or flash attention (model has %s): dynamic batching", impl)
            return None
        return ContinuousBatcher(model, tokenizer, **kw)
    except Exception as e:  # noqa: BLE001 - any failure here only costs the faster engine
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        log.warning("continuous batching unavailable (%s): dynamic batching", first)
        return None


def get_engine(source: str, engine: str | None = None) -> LocalEngine:
    """The process-wide engine of ``source`` (loaded on first use) on ``engine`` (``llama`` |
    ``transformers`` | ``auto``; None: the configured choice). One set by ``set_engine`` serves any."""
    want = resolve_engine(engine)
    with _engines_lock:
        eng = _engines.get((source, "*")) or _engines.get((source, want))
        if eng is None:
            eng = LocalEngine.load(source, want)
            _engines[(source, want)] = eng
        return eng


def has_engine(source: str) -> bool:
    return any(key[0] == source for key in _engines)


def set_engine(source: str, engine: LocalEngine) -> None:
    """Install an already-built engine under a name (tests, benchmarks, preloaded models)."""
    with _engines_lock:
        _engines[(source, "*")] = engine


def _make_provider_class():
    from litellm import CustomLLM
    from litellm.types.utils import ModelResponse

    class LocalLLM(CustomLLM):
        """litellm adapter: builds a ModelResponse with usage from the batcher's result."""

        def _params(self, optional_params: dict) -> dict:
            return {
                "max_tokens": optional_params.get("max_tokens") or optional_params.get("max_completion_tokens") or 256,
                "temperature": optional_params.get("temperature") or 0.0,
                "top_p": optional_params.get("top_p") or 1.0,
                "stop": optional_params.get("stop"),
            }

        def _response(self, model: str, model_response: ModelResponse, res: GenResult) -> ModelResponse:
            model_response.choices[0].message.content = res.text  # type: ignore[union-attr]
            # litellm knows stop and length; a loop cut short is a stop of ours, not the limit
            model_response.choices[0].finish_reason = "length" if res.finish_reason == "length" else "stop"
            model_response.model = f"local/{model}"
            model_response.created = int(time.time())
            from litellm.types.utils import Usage

            model_response.usage = Usage(
                prompt_tokens=res.prompt_tokens,
                completion_tokens=len(res.token_ids),
                total_tokens=res.prompt_tokens + len(res.token_ids),
            )
            return model_response

        async def acompletion(
            self,
            model,
            messages,
            api_base,
            custom_prompt_dict,
            model_response,
            print_verbose,
            encoding,
            api_key,
            logging_obj,
            optional_params,
            acompletion=None,
            litellm_params=None,
            logger_fn=None,
            headers={},  # noqa: B006 - litellm's signature
            timeout=None,
            client=None,
        ):
            engine = await asyncio.to_thread(get_engine, model, optional_params.get(SPEC_KEY))
            res = await engine.agenerate(messages, on_tokens=REPORT_TOKENS.get(), **self._params(optional_params))
            return self._response(model, model_response, res)

        def completion(
            self,
            model,
            messages,
            api_base,
            custom_prompt_dict,
            model_response,
            print_verbose,
            encoding,
            api_key,
            logging_obj,
            optional_params,
            acompletion=None,
            litellm_params=None,
            logger_fn=None,
            headers={},  # noqa: B006 - litellm's signature
            timeout=None,
            client=None,
        ):
            engine = get_engine(model, optional_params.get(SPEC_KEY))
            res = engine.request(messages, **self._params(optional_params)).result()
            return self._response(model, model_response, res)

    return LocalLLM


def register_local_provider(litellm: Any) -> None:
    """Add the ``local`` provider to litellm (idempotent)."""
    if any(item.get("provider") == "local" for item in litellm.custom_provider_map):
        return
    handler = _make_provider_class()()
    litellm.custom_provider_map = [*litellm.custom_provider_map, {"provider": "local", "custom_handler": handler}]
    from litellm.utils import custom_llm_setup

    custom_llm_setup()
