"""Tree search over reasoning thoughts: MC-Tree-Of-Agents, the baselines, and the runner.

The search is event-sourced: ``events`` is the vocabulary (one typed payload per kind),
``tree.TreeState`` the fold, ``journal.Journal`` the only writer of a problem's tree (and its
replay on resume), ``context.ProblemContext`` the operations strategies search with, and
``timeline.Timeline`` the seeking fold viewers replay with. Heavy modules (sandbox,
litellm) are imported only when a run starts.
"""

from engine.search.config import RunConfig, SearchConfig
from engine.search.registry import STRATEGIES, make_strategy
from engine.search.strategy import Strategy
from engine.search.tree import Node, ProblemTree, TreeState

__all__ = ["Node", "ProblemTree", "RunConfig", "STRATEGIES", "SearchConfig", "Strategy", "TreeState", "make_strategy"]
