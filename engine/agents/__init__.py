"""LLM policies for the search: hosted (any litellm provider) and local (in-process transformers).

Importing this package is cheap: litellm and torch load on the first call that needs them.
"""

from __future__ import annotations

from engine.agents.config import agent_presets, default_agent_specs, load_agents, load_budget, paper_agent_specs
from engine.agents.llm import LLMClient, cache_key
from engine.agents.policy import Policy
from engine.agents.scripted import ScriptedPolicy
from engine.agents.types import (
    Budget,
    BudgetExceeded,
    CallContext,
    CallSink,
    LLMCallRecord,
    MemorySink,
    PolicyError,
    PolicySpec,
    Solution,
    Thought,
)


def make_policies(specs: list[PolicySpec], client: LLMClient) -> list[Policy]:
    """One Policy per spec, all sharing ``client`` (and so its sink, cache and budget)."""
    return [Policy(s, client) for s in specs]


__all__ = [
    "Budget",
    "BudgetExceeded",
    "CallContext",
    "CallSink",
    "LLMCallRecord",
    "LLMClient",
    "MemorySink",
    "Policy",
    "PolicyError",
    "PolicySpec",
    "ScriptedPolicy",
    "Solution",
    "Thought",
    "agent_presets",
    "cache_key",
    "default_agent_specs",
    "load_agents",
    "load_budget",
    "make_policies",
    "paper_agent_specs",
]
