"""Strategy names as the CLI, the TUI and stored run configs spell them."""

from __future__ import annotations

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


def make_strategy(name: str, config: SearchConfig) -> Strategy:
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ConfigError(f"unknown strategy {name!r}: choose from {', '.join(STRATEGIES)}")
    return cls(config)
