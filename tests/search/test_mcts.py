"""MC-Tree-Of-Agents on the ladder problem: expand, simulate, prune, refine, limits, terminals,
event-fold equality and public/private separation."""

from __future__ import annotations

from collections import Counter

from engine.agents import prompts
from engine.search import events as ev
from engine.search.config import SearchConfig
from engine.search.tree import TreeState
from tests.search.helpers import ladder_problem, make_policy

A_THOUGHTS = ["up", "down", "same"]
B_THOUGHTS = ["up up", "same", "down"]


def _policies(log=None, **kw):
    return [
        make_policy("A", A_THOUGHTS, log=log, **kw),
        make_policy("B", B_THOUGHTS, refine_to="down again", log=log, **kw),
    ]


def _kinds(events, kind):
    return [e.payload_dict() for e in events if e.kind == kind]


def _by_thought(px):
    return {n.thought: n for n in px.tree.nodes.values()}


async def test_one_rollout_expands_simulates_prunes_and_refines(search_one):
    px, events, result = await search_one(_policies(), SearchConfig(rollouts=1, stop_on_solve=False))
    tree = px.tree
    root = tree.nodes["0"]
    assert root.pass_rate == 0.25 and len(root.solutions) == 2  # level 1: 1 of 4 public tests
    [expand] = _kinds(events, ev.EXPAND)
    assert [c["policy"] for c in expand["children"]] == ["A"] * 3 + ["B"] * 3
    assert [c["prior"] for c in expand["children"][:3]] == sorted(
        [c["prior"] for c in expand["children"][:3]], reverse=True
    )
    nodes = _by_thought(px)
    assert nodes["up [A]"].pass_rate == 0.5 and nodes["up up [B]"].pass_rate == 0.75
    assert nodes["same [A]"].pass_rate == 0.25 and not nodes["same [A]"].pruned  # equal PR is not ill
    # A's ill child was refined (by A, after B's reflection) in place and is alive again
    refined = nodes["up (refined)"]
    assert refined.old_thoughts == ["down [A]"] and refined.pass_rate == 0.5 and not refined.pruned
    assert refined.policy == "A" and refined.refinements == 1
    # B's ill child stayed ill: refined twice (per-node limit 2), pruned three times
    b_ill = nodes["down again"]
    assert b_ill.pruned and b_ill.refinements == 2 and b_ill.old_thoughts == ["down [B]", "down again"]
    prunes = Counter(p["node"] for p in _kinds(events, ev.PRUNE))
    assert prunes == {refined.id: 1, b_ill.id: 3}
    reflects = {(r["node"], r["policy"]) for r in _kinds(events, ev.REFLECT)}
    assert reflects == {(refined.id, "B"), (b_ill.id, "A")}  # a *different* policy reflects
    refines = [(r["node"], r["policy"]) for r in _kinds(events, ev.REFINE)]
    assert refines == [(refined.id, "A"), (b_ill.id, "B"), (b_ill.id, "B")]
    # every pruned node got an instant zero-reward backup
    zero = [b for b in _kinds(events, ev.BACKUP) if b["reward"] == 0.0]
    assert len(zero) == 4
    # final backup: live children get gamma*PR, root gets the best (max backup)
    assert tree.nodes["0"].value == max(0.9 * 0.25, 0.9 * 0.75)
    assert nodes["up up [B]"].visits == 1 and abs(nodes["up up [B]"].value - 0.675) < 1e-9
    assert tree.nodes["0"].visits == 1 + 4 + 1  # root sim, 4 zero backups, rollout backup
    assert result["public_pass_rate"] == 0.75 and result["policy"] in ("A", "B")


async def test_fold_of_the_log_equals_the_search_tree(search_one):
    px, events, _ = await search_one(_policies(), SearchConfig(rollouts=6, stop_on_solve=False))
    folded = TreeState().apply_all(events).tree(px.problem.id)
    assert folded.signature() == px.tree.signature()
    assert len(px.tree.nodes) > 10 and px.tree.rollouts_done == 6
    # replaying any prefix never fails
    for cut in range(0, len(events), 7):
        TreeState().apply_all(events[:cut])


async def test_global_refine_limit_and_no_refine_and_no_prune(search_one):
    px, events, _ = await search_one(_policies(), SearchConfig(rollouts=1, refine_limit=1, stop_on_solve=False))
    assert len(_kinds(events, ev.REFINE)) == 1 and px.tree.refinements == 1
    assert _kinds(events, ev.REFINE)[0]["old_thought"] == "down [A]"  # quota goes in child order

    px, events, _ = await search_one(
        _policies(), SearchConfig(rollouts=1, stop_on_solve=False), strategy="mcts-norefine"
    )
    assert len(_kinds(events, ev.PRUNE)) == 2 and not _kinds(events, ev.REFINE) and not _kinds(events, ev.REFLECT)

    px, events, _ = await search_one(
        _policies(), SearchConfig(rollouts=1, stop_on_solve=False), strategy="mcts-noprune"
    )
    assert not _kinds(events, ev.PRUNE) and not _kinds(events, ev.REFINE)
    assert not any(n.pruned for n in px.tree.nodes.values())


async def test_pruned_nodes_are_never_selected(search_one):
    px, events, _ = await search_one(_policies(), SearchConfig(rollouts=8, stop_on_solve=False, refine=False))
    pruned = {p["node"] for p in _kinds(events, ev.PRUNE)}
    assert pruned
    for s in _kinds(events, ev.SELECT):
        assert not pruned & set(s["path"])


async def test_terminal_leaves_back_up_their_reward_without_expanding(search_one):
    px, events, _ = await search_one(
        _policies(), SearchConfig(rollouts=5, max_depth=1, stop_on_solve=False, prune=False)
    )
    assert len(_kinds(events, ev.EXPAND)) == 1  # only the root is expandable
    children = [px.tree.nodes[c] for c in px.tree.nodes["0"].children]
    assert all(c.terminal for c in children)
    # rollouts 2..5 select a terminal leaf and back up r_T = its own pass rate (no gamma)
    later = [b for b in _kinds(events, ev.BACKUP) if b["rollout"] >= 2]
    assert len(later) == 4
    for b in later:
        leaf = px.tree.nodes[b["path"][-1]]
        assert leaf.terminal and b["reward"] == leaf.pass_rate


async def test_semantic_terminal_marker(search_one):
    pols = [make_policy("A", ["up <END>", "same"])]
    px, _, _ = await search_one(pols, SearchConfig(rollouts=1, stop_on_solve=False, thoughts_per_policy=2))
    nodes = _by_thought(px)
    assert nodes["up <END> [A]"].terminal and not nodes["same [A]"].terminal
    assert nodes["up <END> [A]"].value == 0.5  # r_T, not gamma * PR


async def test_stop_on_solve_and_keep_exploring(search_one):
    pols = [make_policy("A", ["up", "same"], solve_at=3), make_policy("B", ["up", "same"], solve_at=3)]
    px, events, result = await search_one(pols, SearchConfig(rollouts=10, thoughts_per_policy=2))
    [found] = _kinds(events, ev.SOLUTION_FOUND)
    assert px.tree.rollouts_done == 2 and result["status"] == "solved"  # level 3 needs two "up" steps
    assert result["public_pass_rate"] == 1.0 and result["passed_private"] and result["private_pass_rate"] == 1.0
    assert found["node"] == result["node"]
    px2, _, _ = await search_one(pols, SearchConfig(rollouts=10, thoughts_per_policy=2, stop_on_solve=False))
    assert px2.tree.rollouts_done == 10


async def test_policies_never_see_private_tests(search_one):
    log: list = []
    problem = ladder_problem("secret/1")
    await search_one(_policies(log=log), SearchConfig(rollouts=4, stop_on_solve=False), problem=problem)
    assert {entry[0] for entry in log} == {"thoughts", "solution", "reflect", "refine"}
    for entry in log:
        view, path = entry[1], entry[2]
        assert view.private_tests == [] and view.solutions == []
        msgs = {
            "thoughts": prompts.propose_thoughts(view, path, 3),
            "solution": prompts.write_solution(view, path),
            "reflect": prompts.reflect(view, path, "code", entry[-1] if entry[0] == "reflect" else "", 0.0),
            "refine": prompts.refine(view, path, "t", "s", 0.0),
        }[entry[0]]
        text = repr(msgs) + repr(entry)
        assert "PRIVATE-" not in text and "candidate(10)" not in text and "f(10)" not in text
        assert "assert f(0) == 0" in repr(msgs)  # public tests are shown, calling the function by name


async def test_single_policy_variant_uses_the_first_agent(search_one):
    px, events, _ = await search_one(_policies(), SearchConfig(rollouts=2, stop_on_solve=False), strategy="mcts-single")
    assert {c["policy"] for e in _kinds(events, ev.EXPAND) for c in e["children"]} == {"A"}
    assert {s["policy"] for s in px.tree.nodes["0"].solutions} == {"A"}
    # with one policy, the reflection comes from the author itself
    assert {r["policy"] for r in _kinds(events, ev.REFLECT)} <= {"A"}


async def test_failing_policy_is_reported_and_search_goes_on(search_one):
    def boom(problem, path, k):
        raise RuntimeError("model offline")

    from engine.agents.scripted import ScriptedPolicy

    bad = ScriptedPolicy("C", thoughts_fn=boom)
    px, events, result = await search_one(
        [make_policy("A", A_THOUGHTS), bad], SearchConfig(rollouts=2, stop_on_solve=False)
    )
    errs = _kinds(events, ev.LLM_ERROR)
    assert errs and errs[0]["policy"] == "C" and "model offline" in errs[0]["message"]
    assert px.tree.errors and result["status"] == "finished"
    assert all(c["policy"] == "A" for e in _kinds(events, ev.EXPAND) for c in e["children"])


def _magic_policies():
    """A solves the problem from any state whose path has a "magic" step; B's code fails there.

    Root: both write level-3 ladder code (PR 0.75). "magic [A]": A passes every public test,
    B passes none, so PR = 0.5 < 0.75: the node that holds the solution is ill."""
    from engine.agents.scripted import ScriptedPolicy
    from tests.search.helpers import ladder_code

    real = "def f(x):\n    return x * x\n"

    def thoughts(tag):
        return lambda problem, path, k: [f"{tag} [{'A' if tag == 'magic' else 'B'}]"]

    def solution(writer):
        def fn(problem, path):
            if any("magic" in t for t in path):
                return real if writer == "A" else "def f(x):\n    return None\n"
            return ladder_code(3)

        return fn

    return [
        ScriptedPolicy(
            name,
            thoughts_fn=thoughts(tag),
            solution_fn=solution(name),
            reflect_fn=lambda *a: "it went wrong",
            refine_fn=lambda *a: "start over",
        )
        for name, tag in (("A", "magic"), ("B", "same"))
    ]


async def test_refinement_never_throws_away_a_solution_that_passed_the_public_tests(search_one):
    for stop in (True, False):
        cfg = SearchConfig(rollouts=2, thoughts_per_policy=1, stop_on_solve=stop)
        px, events, result = await search_one(_magic_policies(), cfg)
        [found] = _kinds(events, ev.SOLUTION_FOUND)
        node = px.tree.nodes[found["node"]]
        assert node.thought == "magic [A]" and node.solves_public(), stop  # not refined away
        assert result["node"] == found["node"] and result["public_pass_rate"] == 1.0, stop
        assert result["passed_private"] and result["code"] == found["code"], stop
        assert not any(r["node"] == found["node"] for r in _kinds(events, ev.REFINE)), stop
        if stop:  # the rollout that solved it stopped before pruning
            assert not _kinds(events, ev.PRUNE) and result["status"] == "solved"


async def test_prune_backup_downweights_ancestors_under_max(search_one):
    """Paper 4.1.1: the ill node's instant zero-reward backup lowers its ancestors' Q (f = max too)."""
    pols = [make_policy("A", ["down", "down down"])]  # every child falls to level <= 0: PR 0 < 0.25
    cfg = SearchConfig(rollouts=1, thoughts_per_policy=2, refine=False, stop_on_solve=False, backup="max")
    px, events, _ = await search_one(pols, cfg)
    assert len(_kinds(events, ev.PRUNE)) == 2
    root = px.tree.nodes["0"]
    # root sim: Q = 0.9 * 0.25, N = 1; two zero rewards averaged in; the rollout's own backup is 0
    assert abs(root.value - 0.225 * 1 / 2 * 2 / 3) < 1e-9 and root.visits == 4


async def test_eq10_counts_a_failed_solution_call_in_the_denominator(search_one):
    from engine.agents.scripted import ScriptedPolicy

    def boom(problem, path):
        raise RuntimeError("model offline")

    pols = [make_policy("A", ["same"]), ScriptedPolicy("C", thoughts_fn=lambda *a: [], solution_fn=boom)]
    px, events, _ = await search_one(pols, SearchConfig(rollouts=1, thoughts_per_policy=1, stop_on_solve=False))
    root = px.tree.nodes["0"]
    assert [s["error"] for s in root.solutions] == [False, True]
    assert root.pass_rate == (0.25 + 0.0) / 2  # A passes 1 of 4 public tests; C's failed call scores 0
    assert any(e["stage"] == "solution" and e["policy"] == "C" for e in _kinds(events, ev.LLM_ERROR))
