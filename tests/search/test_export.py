"""`bdc export` gives the paper's data by default: one (p2t, t2s) pair per solved problem."""

from __future__ import annotations

from engine.search.config import SearchConfig
from engine.search.export import examples_from_run, one_per_problem, per_node_examples
from tests.search.helpers import ladder_problem, make_policy


async def test_per_problem_export_is_the_full_chain_and_the_solving_code(search_one):
    problem = ladder_problem()
    pol = make_policy("a", ["up", "down"], solve_at=3)
    px, events, result = await search_one([pol], SearchConfig(rollouts=6, thoughts_per_policy=2), problem=problem)
    assert result["status"] == "solved"
    probs = {problem.id: problem.to_dict()}
    tree = px.tree
    chain = tree.path_thoughts(tree.solved_by)
    assert len(chain) == 2 and all("up" in t for t in chain)

    examples = examples_from_run("r", events, probs)
    assert [e.stage for e in examples] == ["p2t", "t2s"]
    p2t, t2s = examples
    assert p2t.output == "Step 1: up [a]\nStep 2: up [a]" and problem.statement in p2t.input
    assert "Reasoning:\nStep 1: up [a]\nStep 2: up [a]" in t2s.input
    assert t2s.output == "```python\ndef f(x):\n    return x * x\n```"
    assert {e.problem_id for e in examples} == {problem.id} and all(
        e.problem_digest == problem.digest for e in examples
    )
    assert examples_from_run("r", events, probs, stages=("t2s",)) == [t2s]

    # the per-node variant keeps every node's pairs (single next steps), failing code included
    nodes = per_node_examples("r", events, probs)
    assert len(nodes) > len(examples) and any(e.pass_rate < 1.0 for e in nodes)
    assert all(not e.output.startswith("Step") for e in nodes if e.stage == "p2t")
    assert all(e.pass_rate >= 0.5 for e in per_node_examples("r", events, probs, min_pass_rate=0.5))


async def test_unsolved_problems_give_no_examples_and_runs_give_one_pair_per_problem(search_one):
    problem = ladder_problem("ladder/hard")
    _, events, result = await search_one(
        [make_policy("a", ["down"], start=0)], SearchConfig(rollouts=2), problem=problem
    )
    assert result["status"] != "solved"
    assert examples_from_run("r", events, {problem.id: problem.to_dict()}) == []

    solved = ladder_problem("ladder/easy")
    _, ev1, _ = await search_one([make_policy("a", ["up"], solve_at=2)], SearchConfig(rollouts=3), problem=solved)
    first = examples_from_run("r1", ev1, {solved.id: solved.to_dict()})
    again = examples_from_run("r2", ev1, {solved.id: solved.to_dict()})
    assert [e.run_id for e in one_per_problem([*first, *again])] == ["r1", "r1"]
