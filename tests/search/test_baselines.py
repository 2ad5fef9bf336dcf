"""Every baseline runs behind the same Strategy interface, events and metrics."""

from __future__ import annotations

import pytest

from engine.search import events as ev
from engine.search.config import SearchConfig
from engine.search.metrics import summarize
from engine.search.registry import STRATEGIES, make_strategy
from engine.search.tree import TreeState
from tests.search.helpers import ladder_problem, make_policy


def _policies():
    return [make_policy("A", ["up", "same"], solve_at=4), make_policy("B", ["same", "up"], solve_at=4)]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
async def test_every_strategy_folds_and_scores(search_one, name):
    px, events, result = await search_one(_policies(), SearchConfig(rollouts=4, thoughts_per_policy=2), strategy=name)
    assert TreeState().apply_all(events).tree(px.problem.id).signature() == px.tree.signature()
    kinds = [e.kind for e in events]
    assert kinds[:3] == [ev.PROBLEM_STARTED, ev.ROOT, ev.SIMULATE] and kinds[-1] == ev.PROBLEM_FINISHED
    assert 0.0 <= result["private_pass_rate"] <= 1.0 and result["public_pass_rate"] >= 0.25
    if name == "zero-shot":
        assert len(px.tree.nodes) == 1 and result["public_pass_rate"] == 0.25
    else:
        assert len(px.tree.nodes) > 1


@pytest.mark.parametrize("name", ["zero-shot", "reflexion", "tot", "lats", "rethinkmcts", "mcts-single"])
async def test_baselines_are_per_model_rows(search_one, name):
    """The paper's baseline rows are one model each: never a best-of-N across the agents."""
    px, events, _ = await search_one(_policies(), SearchConfig(rollouts=3, thoughts_per_policy=2), strategy=name)
    policies = {s["policy"] for n in px.tree.nodes.values() for s in n.solutions}
    policies |= {n.policy for n in px.tree.nodes.values() if n.policy}
    assert policies == {"A"}


async def test_reflexion_chains_reflections(search_one):
    px, events, result = await search_one(_policies(), SearchConfig(rollouts=3), strategy="reflexion")
    reflects = [e.payload_dict() for e in events if e.kind == ev.REFLECT]
    assert [r["policy"] for r in reflects] == ["A", "A", "A"]
    chain = [n for n in px.tree.nodes.values() if n.depth > 0]
    assert len(chain) == 3 and all(n.thought.startswith("Reflection: ") for n in chain)
    assert [n.depth for n in sorted(chain, key=lambda n: int(n.id))] == [1, 2, 3]


async def test_tot_keeps_a_beam_per_level(search_one):
    pols = [make_policy("A", ["up", "same"]), make_policy("B", ["down", "up up"])]
    px, events, _ = await search_one(
        pols,
        SearchConfig(rollouts=10, thoughts_per_policy=2, beam_width=2, max_depth=2, stop_on_solve=False),
        strategy="tot",
    )
    expands = [e.payload_dict() for e in events if e.kind == ev.EXPAND]
    assert len(expands) == 1 + 2  # root, then the two best children
    level1 = {c["node"]: c["thought"] for c in expands[0]["children"]}
    assert {level1[e["parent"]] for e in expands[1:]} == {"up [A]", "same [A]"}  # B is another row


async def test_lats_nodes_are_single_policy_solutions(search_one):
    px, events, _ = await search_one(_policies(), SearchConfig(rollouts=3, stop_on_solve=False), strategy="lats")
    for n in px.tree.nodes.values():
        if n.depth > 0:
            assert n.thought.startswith("Revise: ")
            assert [s["policy"] for s in n.solutions] == [n.policy]


def test_unknown_strategy_is_a_config_error():
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown strategy"):
        make_strategy("nope", SearchConfig())


def test_metrics_on_a_known_outcome():
    results = [
        {"difficulty": "easy", "private_pass_rate": 1.0, "passed_private": True, "public_pass_rate": 1.0, "calls": 4},
        {"difficulty": "easy", "private_pass_rate": 0.5, "passed_private": False, "public_pass_rate": 1.0, "calls": 6},
        {
            "difficulty": "hard",
            "private_pass_rate": 0.0,
            "passed_private": False,
            "public_pass_rate": 0.5,
            "cost": 0.25,
        },
    ]
    m = summarize(results)
    assert m["overall"]["n"] == 3 and abs(m["overall"]["pr"] - 0.5) < 1e-9 and abs(m["overall"]["ac"] - 1 / 3) < 1e-9
    assert m["by_difficulty"]["easy"] == {
        "n": 2,
        "pr": 0.75,
        "ac": 0.5,
        "solved_public": 2,
        "calls": 10,
        "tokens": 0,
        "cost": 0.0,
        "wall_s": 0.0,
        "unscored": 0,
        "unscored_ids": [],
    }
    assert m["by_difficulty"]["hard"]["pr"] == 0.0 and m["overall"]["cost"] == 0.25


async def test_prompts_ask_for_the_terminal_marker_the_search_recognises(search_one):
    from engine.agents import prompts

    marker = SearchConfig().terminal_marker
    text = prompts.propose_thoughts(ladder_problem(), [], 3)[-1]["content"]
    assert marker == prompts.TERMINAL_MARKER and f"end that step with {marker}" in text
    # a step carrying the marker is a terminal state: never expanded further
    px, _, _ = await search_one([make_policy("A", [f"up {marker}"])], SearchConfig(rollouts=3, stop_on_solve=False))
    ended = [n for n in px.tree.nodes.values() if marker in n.thought]
    assert ended and all(n.terminal and not n.children for n in ended)
