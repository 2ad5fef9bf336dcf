"""Progress of LLM calls in flight: who is writing what, and how many tokens so far.

``LLMClient`` opens a ``CallProgress`` for every call it sends and binds its ``tokens`` method to
``REPORT_TOKENS`` (a context variable) while the call runs; an engine that streams (the local
provider) reads it when the call arrives and reports its generated-token count from its
generation thread. Nothing here writes per token: a sink decides how often a count is stored
(``engine.store.call_progress`` writes at most once a second per call).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Protocol

from engine.agents.types import CallContext

# the running call's token reporter (thread-safe, cheap), or None outside a call or without a sink
REPORT_TOKENS: ContextVar[Callable[[int], None] | None] = ContextVar("bdc_report_tokens", default=None)


class CallProgress(Protocol):
    """One call in flight."""

    def tokens(self, n: int) -> None:
        """``n`` tokens generated so far; may be called from any thread, many times a second."""

    def end(self) -> None:
        """The call finished (answered or failed): it is no longer in flight."""


class ProgressSink(Protocol):
    """Where in-flight calls are shown (the store's ``call_progress`` table, a test's list)."""

    def begin(self, ctx: CallContext, policy: str, model: str, kind: str) -> CallProgress: ...
