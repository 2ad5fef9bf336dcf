"""Strategy names as the CLI, the TUI and stored run configs spell them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from engine.errors import ConfigError
from engine.search.baselines import LATS, Reflexion, TreeOfThoughts, ZeroShot
from engine.search.config import SearchConfig
from engine.search.mcts import MCTreeOfAgents, MCTSNoPrune, MCTSNoRefine, SingleMCTreeOfAgents
from engine.search.rethink import RethinkMCTS
from engine.search.strategy import Strategy

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        MCTreeOfAgents,
        SingleMCTreeOfAgents,
        MCTSNoPrune,
        MCTSNoRefine,
        ZeroShot,
        Reflexion,
        TreeOfThoughts,
        LATS,
        RethinkMCTS,
    )
}


A = TypeVar("A")


def agent_groups(strategy: str, agents: Sequence[A]) -> list[list[A]]:
    """The agents of each run a search with ``strategy`` makes: a single-model method (the
    baselines, ``mcts-single``, ``rethinkmcts``) gets one run per agent — one row per model, as
    in the paper, never a best-of-N across models; any other strategy one run with them all."""
    cls = STRATEGIES.get(strategy)
    if cls is not None and cls.single_policy and len(agents) > 1:
        return [[a] for a in agents]
    return [list(agents)]


def make_strategy(name: str, config: SearchConfig) -> Strategy:
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ConfigError(f"unknown strategy {name!r}: choose from {', '.join(STRATEGIES)}")
    return cls(config)
