"""The one place bdc talks to litellm: cache, budget, retries, recording, clear errors.

Every policy call goes through ``LLMClient.complete``:

1. the cache key (model, messages, parameters, sample index) is looked up in the sink, so a
   resumed or re-run search makes no repeated paid call and gets the same replies;
2. the run's shared Budget admits the call or raises BudgetExceeded;
3. ``litellm.acompletion`` runs with retries and exponential backoff on timeouts, rate limits,
   5xx and connection errors;
4. the call (hashes, tokens, cost, latency, retries, error) is recorded in the sink, and errors
   become a PolicyError that names the policy and says what to do.

litellm is imported lazily (it is slow to import) with its local cost map, so start-up never
waits on the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine.agents.progress import REPORT_TOKENS, ProgressSink
from engine.agents.types import (
    Budget,
    BudgetExceeded,
    CallContext,
    CallSink,
    LLMCallRecord,
    MemorySink,
    PolicyError,
    PolicySpec,
)
from engine.logs import redact

_SECRET_PARAMS = {"api_key", "aws_secret_access_key", "aws_access_key_id", "azure_ad_token"}


def import_litellm():
    """Import litellm with its bundled cost map (no network fetch) and quiet banners."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    if not any(item.get("provider") == "local" for item in litellm.custom_provider_map):
        from engine.agents.local.provider import register_local_provider

        register_local_provider(litellm)
    return litellm


def _sha(obj: Any) -> str:
    data = obj if isinstance(obj, str) else json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def cache_key(model: str, messages: list[dict], params: dict[str, Any], sample_index: int) -> str:
    """sha256 of what determines a reply; secrets never enter the key."""
    public = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
    return _sha({"model": model, "messages": messages, "params": public, "sample_index": sample_index})


@dataclass
class Reply:
    text: str
    tokens_in: int
    tokens_out: int
    cost: float
    cached: bool
    retries: int = 0
    latency_s: float = 0.0


class _Retryable(Exception):
    pass


def local_cause(exc: BaseException) -> BaseException:
    """The error a local engine raised under litellm's wrapping (the first one in the chain that litellm
    did not raise), else ``exc``."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if not type(cur).__module__.startswith("litellm"):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return exc


def classify(exc: BaseException, model: str = "") -> tuple[str, bool]:
    """(kind, retryable) for an exception raised by litellm. A local model's error is never retried:
    generation in this process is no server that may answer next time (its watchdog already bounded it)."""
    litellm = import_litellm()
    if isinstance(exc, PolicyError):
        return exc.kind, False
    if model.startswith("local/"):
        cause = local_cause(exc)
        return (cause.kind if isinstance(cause, PolicyError) else "local_error"), False
    msg = str(exc)
    low = msg.lower()
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or isinstance(exc, getattr(litellm, "Timeout", ())):
        return "timeout", True
    if (
        isinstance(exc, litellm.AuthenticationError)
        or "missing credentials" in low
        or "api_key" in low
        and "set" in low
    ):
        return "missing_key", False
    if "llm provider not provided" in low or isinstance(exc, litellm.NotFoundError):
        return "unknown_model", False
    if isinstance(exc, litellm.RateLimitError):
        return "rate_limit", True
    if isinstance(exc, litellm.ContextWindowExceededError):
        return "context_window", False
    if isinstance(exc, litellm.APIConnectionError) or "connection error" in low or "connection refused" in low:
        return "unreachable", True
    if isinstance(
        exc, (litellm.InternalServerError, litellm.ServiceUnavailableError, litellm.BadGatewayError, litellm.APIError)
    ) and not isinstance(exc, litellm.BadRequestError):
        return "server_error", True
    if isinstance(exc, litellm.BadRequestError):
        return "bad_request", False
    return "error", False


_ADVICE = {
    "missing_key": "set the provider's API key (e.g. OPENAI_API_KEY / ANTHROPIC_API_KEY) or pass api_key in the agent's extra params",
    "unknown_model": "check the model string: '<provider>/<model>' as litellm knows it, or 'local/<name|path>'",
    "unreachable": "the server did not answer: check api_base and that the server is running",
    "timeout": "the server did not answer in time",
    "rate_limit": "rate limited: lower concurrency or wait",
    "server_error": "the provider returned a server error",
    "context_window": "the prompt is longer than the model's context window",
    "bad_request": "the provider rejected the request",
    "local_error": "the local model failed in this process (the log has the details)",
}


def _first_line(msg: str, n: int = 300) -> str:
    line = next((ln.strip() for ln in msg.splitlines() if ln.strip()), msg)
    return line[:n]


CompletionFn = Callable[..., Awaitable[Any]]


class LLMClient:
    """Shared by all policies of a run: one sink, one budget, one cache, one retry policy."""

    def __init__(
        self,
        sink: CallSink | None = None,
        budget: Budget | None = None,
        *,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        timeout_s: float = 180.0,
        completion_fn: CompletionFn | None = None,
        progress: ProgressSink | None = None,
    ) -> None:
        self.sink: CallSink = sink if sink is not None else MemorySink()
        self.budget = budget if budget is not None else Budget()
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._completion_fn = completion_fn
        self.progress = progress  # calls in flight are shown there (engine.agents.progress)
        self._inflight: dict[str, asyncio.Future] = {}
        self._next_base: dict[tuple[str, ...], int] = {}

    def _route(self, params: dict[str, Any]) -> dict[str, Any]:
        """A list of ``api_base``s (replicas of one model) is load-balanced round-robin, one
        attempt at a time, so a retry goes to the next replica. The list, not the replica
        chosen, is in the cache key: every replica serves the same cached reply."""
        bases = params.get("api_base")
        if not isinstance(bases, (list, tuple)):
            return params
        key = tuple(bases)
        i = self._next_base.get(key, 0)
        self._next_base[key] = i + 1
        return {**params, "api_base": key[i % len(key)]}

    async def complete(
        self,
        spec: PolicySpec,
        messages: list[dict],
        *,
        ctx: CallContext,
        policy: str | None = None,
        kind: str = "call",
    ) -> Reply:
        """The reply text for ``messages``; raises PolicyError or BudgetExceeded."""
        params = spec.params()
        key = cache_key(spec.model, messages, params, ctx.sample_index)
        name = policy or spec.name
        prompt_hash = _sha(messages)

        # identical concurrent requests share one call (a tree often asks the same thing twice)
        if key in self._inflight:
            reply = await asyncio.shield(self._inflight[key])
            self._record(ctx, name, spec.model, prompt_hash, reply.text, 0, 0, 0.0, 0.0, 0, True, None)
            return Reply(reply.text, 0, 0, 0.0, True)

        hit = await self.sink.cache_get(key)
        if hit is not None and "text" in hit:
            self._record(ctx, name, spec.model, prompt_hash, hit["text"], 0, 0, 0.0, 0.0, 0, True, None)
            return Reply(hit["text"], int(hit.get("tokens_in", 0)), int(hit.get("tokens_out", 0)), 0.0, True)

        await self.budget.areserve()
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            reply = await self._call_shown(spec, messages, params, ctx, name, prompt_hash, kind)
        except BaseException as e:
            if not fut.done():
                fut.set_exception(e)
                fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            fut.set_result(reply)
            self.sink.cache_put(
                key,
                spec.model,
                {"text": reply.text, "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "cost": reply.cost},
            )
            return reply
        finally:
            self._inflight.pop(key, None)

    async def _call_shown(
        self,
        spec: PolicySpec,
        messages: list[dict],
        params: dict,
        ctx: CallContext,
        name: str,
        prompt_hash: str,
        kind: str,
    ) -> Reply:
        """``_call`` shown as in flight in the progress sink (with a token reporter bound for
        engines that stream) from the moment it is sent until it ends."""
        if self.progress is None:
            return await self._call(spec, messages, params, ctx, name, prompt_hash)
        shown = self.progress.begin(ctx, name, spec.model, kind)
        token = REPORT_TOKENS.set(shown.tokens)
        try:
            return await self._call(spec, messages, params, ctx, name, prompt_hash)
        finally:
            REPORT_TOKENS.reset(token)
            shown.end()

    async def _call(
        self, spec: PolicySpec, messages: list[dict], params: dict, ctx: CallContext, name: str, prompt_hash: str
    ) -> Reply:
        litellm = import_litellm()
        fn = self._completion_fn or litellm.acompletion
        retries = 0
        start = time.perf_counter()
        while True:
            try:
                if spec.model.startswith("local/"):
                    # fail fast and clearly (not installed, bad path) before litellm wraps the error
                    from engine.agents.local.loader import resolve_source
                    from engine.agents.local.provider import has_engine

                    if not has_engine(spec.model[len("local/") :]):
                        resolve_source(spec.model[len("local/") :])
                resp = await fn(
                    model=spec.model, messages=messages, timeout=self.timeout_s, num_retries=0, **self._route(params)
                )
                text = _content(resp)
                tin, tout = _usage(resp)
                cost = self._cost(litellm, spec.model, resp)
                latency = time.perf_counter() - start
                self.budget.charge(tin + tout, cost)
                self._record(ctx, name, spec.model, prompt_hash, text, tin, tout, cost, latency, retries, False, None)
                return Reply(text, tin, tout, cost, False, retries, latency)
            except (BudgetExceeded, asyncio.CancelledError):
                raise
            except Exception as e:  # noqa: BLE001 - every provider error is classified below
                kind, retryable = classify(e, spec.model)
                cause = local_cause(e) if spec.model.startswith("local/") else e  # the engine's reason, not litellm's
                if retryable and retries < self.max_retries:
                    retries += 1
                    delay = self.backoff_s * (2 ** (retries - 1)) * (0.5 + random.random())
                    await asyncio.sleep(delay)
                    continue
                latency = time.perf_counter() - start
                error = f"{kind}: {redact(_first_line(str(cause) or type(cause).__name__))}"  # providers echo keys back
                self._record(ctx, name, spec.model, prompt_hash, "", 0, 0, 0.0, latency, retries, False, error)
                advice = _ADVICE.get(kind, "")
                raise PolicyError(
                    f"policy {name!r} ({spec.model}): {error}" + (f" -- {advice}" if advice else ""),
                    policy=name,
                    model=spec.model,
                    kind=kind,
                ) from e

    @staticmethod
    def _cost(litellm, model: str, resp: Any) -> float:
        if model.startswith("local/"):
            return 0.0
        try:
            return float(litellm.completion_cost(completion_response=resp) or 0.0)
        except Exception:  # noqa: BLE001 - models missing from the cost map cost "unknown" = 0
            return 0.0

    def _record(
        self,
        ctx: CallContext,
        policy: str,
        model: str,
        prompt_hash: str,
        reply: str,
        tin: int,
        tout: int,
        cost: float,
        latency: float,
        retries: int,
        cached: bool,
        error: str | None,
    ) -> None:
        self.sink.record_llm_call(
            LLMCallRecord(
                run_id=ctx.run_id,
                problem_id=ctx.problem_id,
                node_id=ctx.node_id,
                policy=policy,
                model=model,
                prompt_hash=prompt_hash,
                reply_hash=_sha(reply) if reply else "",
                tokens_in=tin,
                tokens_out=tout,
                cost=cost,
                latency_s=latency,
                retries=retries,
                cached=cached,
                error=error,
            )
        )


def _content(resp: Any) -> str:
    try:
        content = resp.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError):
        content = None
    return content or ""


def _usage(resp: Any) -> tuple[int, int]:
    usage = getattr(resp, "usage", None)
    if usage is None:
        return 0, 0
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
