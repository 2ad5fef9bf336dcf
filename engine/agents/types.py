"""Value types shared by policies, the LLM client and the search.

They are plain dataclasses so the search and the store can use them without importing
litellm or torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from engine.errors import ConfigError


@dataclass
class PolicySpec:
    """How to build one policy: a name, a litellm model string and generation parameters.

    ``model`` is any litellm string (``openai/gpt-4o-mini``, ``anthropic/claude-...``,
    ``ollama/...``, ``hosted_vllm/...``) or ``local/<name|path>`` for the in-process
    transformers provider. ``extra`` is passed to litellm as is (``api_base``, ``top_p``...).
    """

    name: str
    model: str
    temperature: float = 0.0
    max_tokens: int = 768
    role: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """Generation parameters that shape the reply (part of the cache key)."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, **self.extra}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CallContext:
    """Where a call comes from: it names the call in the store and is part of the cache key.

    ``sample_index`` distinguishes repeated samples of the same prompt, so a resumed run
    replays exactly the replies the first run got.
    """

    run_id: str = ""
    problem_id: str = ""
    node_id: str | None = None
    sample_index: int = 0


@dataclass
class Thought:
    """One proposed next reasoning step; ``prior`` is P(a|S) for PUCB, in (0, 1]."""

    text: str
    prior: float
    policy: str


@dataclass
class Solution:
    """A full program written from a state; ``parse_error`` says why ``code`` may be unusable."""

    code: str
    policy: str
    parse_error: str | None = None


@dataclass
class LLMCallRecord:
    """One LLM call as the store keeps it (a cache hit is recorded too, with ``cached``)."""

    run_id: str
    problem_id: str
    node_id: str | None
    policy: str
    model: str
    prompt_hash: str
    reply_hash: str
    tokens_in: int
    tokens_out: int
    cost: float
    latency_s: float
    retries: int
    cached: bool
    error: str | None = None

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class CallSink(Protocol):
    """Where calls are recorded and replies cached (``engine.store.Store`` implements it)."""

    def record_llm_call(self, rec: LLMCallRecord) -> None: ...

    async def cache_get(self, key: str) -> dict | None: ...

    def cache_put(self, key: str, model: str, value: dict) -> None: ...


class MemorySink:
    """An in-memory CallSink for tests, scripts and runs without a store."""

    def __init__(self) -> None:
        self.calls: list[LLMCallRecord] = []
        self.cache: dict[str, dict] = {}

    def record_llm_call(self, rec: LLMCallRecord) -> None:
        self.calls.append(rec)

    async def cache_get(self, key: str) -> dict | None:
        value = self.cache.get(key)
        return dict(value) if value is not None else None

    def cache_put(self, key: str, model: str, value: dict) -> None:
        self.cache[key] = dict(value)


class PolicyError(ConfigError):
    """A policy cannot be used (unknown model, missing key, unreachable server...).

    ``kind`` lets the search decide: it drops the policy and goes on with the others.
    """

    def __init__(self, message: str, *, policy: str = "", model: str = "", kind: str = "error"):
        super().__init__(message)
        self.policy = policy
        self.model = model
        self.kind = kind


class BudgetExceeded(Exception):
    """The run's shared budget is spent: the search stops cleanly with this status."""

    def __init__(self, what: str, used: float, limit: float):
        super().__init__(f"budget exhausted: {what} {used:g} of {limit:g}")
        self.what = what
        self.used = used
        self.limit = limit


@dataclass
class Budget:
    """Limits shared by every policy of a run; ``None`` means unlimited.

    A call is admitted while every counter is below its limit (so the last call may overshoot
    tokens or cost by one reply). Cache hits are free and never refused.
    """

    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def check(self) -> None:
        """Raise BudgetExceeded when a new paid call must not start."""
        if self.max_calls is not None and self.calls >= self.max_calls:
            raise BudgetExceeded("calls", self.calls, self.max_calls)
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            raise BudgetExceeded("tokens", self.tokens, self.max_tokens)
        if self.max_cost_usd is not None and self.cost_usd >= self.max_cost_usd:
            raise BudgetExceeded("cost_usd", self.cost_usd, self.max_cost_usd)

    def reserve(self) -> None:
        """Check and count one call; atomic on the event loop (no await in between)."""
        self.check()
        self.calls += 1

    async def areserve(self) -> None:
        """``reserve`` for a caller that may wait: a budget shared across processes
        (``engine.distributed.services.RemoteBudget``) asks its owner here."""
        self.reserve()

    def charge(self, tokens: int, cost_usd: float) -> None:
        self.tokens += tokens
        self.cost_usd += cost_usd

    @property
    def exhausted(self) -> bool:
        try:
            self.check()
        except BudgetExceeded:
            return True
        return False
