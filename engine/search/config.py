"""Search and run configuration: everything a stored run needs to be re-run or resumed.

``RunConfig.to_dict()`` is what ``runs.config`` holds, so ``bdc resume`` and the TUI's job
launcher can rebuild the exact search (dataset + subset for provenance, strategy, search
knobs, agent specs, concurrency and budget limits) from the store alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.errors import ConfigError

# the kinds of LLM call a policy makes; baselines (zero-shot, Reflexion, ...) write solutions
CALL_KINDS = ("thought", "solution", "reflection", "refinement")


@dataclass
class SearchConfig:
    """Knobs of MC-Tree-Of-Agents and the baselines.

    Defaults follow the anchors (RethinkMCTS / PG-TD / the BDC release): 16 rollouts,
    P-UCB with exploration constant 4 and base 10, gamma 0.9, 3 thoughts per policy.
    """

    rollouts: int = 16
    c_puct: float = 4.0  # exploration constant (PG-TD "ucb_constant")
    c_base: float = 10.0  # PG-TD "ucb_base": c grows as log((N + base + 1) / base) + c
    gamma: float = 0.9  # eq. 11: Q(S) = gamma * PR(S) for a non-terminal state
    thoughts_per_policy: int = 3
    max_depth: int = 4  # a state this deep is terminal (rule-based terminal, paper 4.1.1)
    backup: str = "max"  # f in eq. 5: "max" (PG-TD/RethinkMCTS) or "mean"
    prune: bool = True
    refine: bool = True
    refine_limit: int = 6  # global (per problem) limit on Refine operations
    refine_limit_per_node: int = 2  # local limit on refining one node
    stop_on_solve: bool = True  # stop a problem once a solution passes every public test
    terminal_marker: str = "<END>"  # a thought containing it is a semantic terminal state
    beam_width: int = 2  # ToT: states kept per level
    max_policies: int | None = None  # single-policy variants use the first policy only
    # per-call-kind generation budgets (issue 16): a thought is one or two sentences, so a thought
    # call gets ~100 tokens and stops at the end of its JSON list; a solution gets a larger budget.
    # ``max_tokens`` of an agent stays its ceiling (the smaller of the two is used).
    thought_tokens: int = 128
    solution_tokens: int = 512
    reflection_tokens: int = 192
    refinement_tokens: int = 96
    thought_stop: list[str] = field(default_factory=lambda: ['"]'])  # end of the JSON list of thoughts
    solution_stop: list[str] = field(default_factory=list)
    reflection_stop: list[str] = field(default_factory=list)
    refinement_stop: list[str] = field(default_factory=lambda: ["\n\n"])  # one step, one paragraph

    def __post_init__(self) -> None:
        if self.rollouts < 0:
            raise ConfigError("rollouts must be >= 0")
        if self.thoughts_per_policy < 1:
            raise ConfigError("thoughts_per_policy must be >= 1")
        if self.max_depth < 1:
            raise ConfigError("max_depth must be >= 1")
        if self.backup not in ("max", "mean"):
            raise ConfigError(f"backup must be 'max' or 'mean', not {self.backup!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError("gamma must be in [0, 1]")
        for kind in CALL_KINDS:
            if int(getattr(self, f"{kind}_tokens")) < 1:
                raise ConfigError(f"{kind}_tokens must be >= 1")
            stop = getattr(self, f"{kind}_stop")
            if not isinstance(stop, list) or not all(isinstance(x, str) and x for x in stop):
                raise ConfigError(f"{kind}_stop must be a list of non-empty strings")

    def call_budgets(self) -> dict[str, dict[str, Any]]:
        """``{kind: {"max_tokens": n, "stop": [...]}}`` for every call kind a policy makes."""
        return {
            kind: {"max_tokens": int(getattr(self, f"{kind}_tokens")), "stop": list(getattr(self, f"{kind}_stop"))}
            for kind in CALL_KINDS
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SearchConfig:
        return cls(**_known(cls, d or {}, "search config"))


@dataclass
class RunConfig:
    """One run: which problems, which strategy, which agents, how much concurrency and money."""

    dataset: str
    strategy: str = "mcts"
    agents: list[dict[str, Any]] = field(default_factory=list)  # PolicySpec dicts
    search: SearchConfig = field(default_factory=SearchConfig)
    dataset_path: str | None = None
    subset: dict[str, Any] = field(default_factory=dict)  # select_subset keyword arguments
    llm_concurrency: int = 8  # LLM calls in flight across the whole run
    sandbox_workers: int = 2
    problem_concurrency: int = 8  # problems searched at once
    sequential: bool = False  # one call at a time, one problem at a time (the anchors' way)
    max_calls: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.search, dict):
            self.search = SearchConfig.from_dict(self.search)
        for name in ("llm_concurrency", "sandbox_workers", "problem_concurrency"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["search"] = self.search.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        if "dataset" not in d:
            raise ConfigError("stored run config has no dataset: this run was not created by `bdc search`")
        return cls(**_known(cls, d, "run config"))


def _known(cls: type, d: dict[str, Any], what: str) -> dict[str, Any]:
    """The keys ``cls`` knows. Unknown keys are ignored so a config written by a newer bdc
    (or with launcher-specific extras) still loads; a wrong type still fails in the class."""
    names = {f.name for f in fields(cls)}
    try:
        return {k: v for k, v in d.items() if k in names}
    except AttributeError as e:
        raise ConfigError(f"{what}: expected a mapping, got {type(d).__name__}") from e


BUDGET_KEYS = tuple(f"{kind}_{what}" for kind in CALL_KINDS for what in ("tokens", "stop"))


def call_budget_settings(path: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The call budgets of ``[search]`` in the config file (``thought_tokens = 128``,
    ``thought_stop = ['"]']``, ...); keyword overrides (CLI flags) win when not None. Keys
    left unset are left out, so SearchConfig's defaults apply."""
    from engine.agents.config import read_config

    section = read_config(path).get("search", {}) or {}
    if not isinstance(section, dict):
        raise ConfigError("config [search] must be a table")
    out = {k: section[k] for k in BUDGET_KEYS if k in section}
    out.update({k: v for k, v in overrides.items() if v is not None})
    for key, value in out.items():
        if key.endswith("_tokens") and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"[search] {key} = {value!r} is not an integer")
        if key.endswith("_stop") and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
            raise ConfigError(f"[search] {key} = {value!r} is not a list of strings")
    return out
