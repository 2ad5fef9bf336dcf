"""P-UCB selection and backup arithmetic on hand-built trees."""

from __future__ import annotations

import math

from engine.search.puct import backup_values, combine, exploration_weight, node_value, p_ucb, select_path
from engine.search.tree import Node, ProblemTree


def _tree() -> ProblemTree:
    t = ProblemTree("p")
    t.nodes["0"] = Node("0", None, "", None, 1.0, 0, children=["1", "2", "3"], visits=5, value=0.5)
    t.nodes["1"] = Node("1", "0", "a", "A", 0.6, 1, visits=3, value=0.6)
    t.nodes["2"] = Node("2", "0", "b", "A", 0.3, 1, visits=0, value=0.45)
    t.nodes["3"] = Node("3", "0", "c", "B", 0.1, 1, visits=1, value=0.7)
    return t


def test_p_ucb_matches_eq3_with_pgtd_weight():
    t = _tree()
    root, c2 = t.nodes["0"], t.nodes["2"]
    w = math.log((5 + 10 + 1) / 10) + 4
    expected = 0.45 + w * 0.3 * math.sqrt(math.log(5)) / (1 + 0)
    assert math.isclose(p_ucb(root, c2, 4.0, 10.0), expected)
    assert math.isclose(exploration_weight(5, 4.0, 10.0), w)


def test_select_picks_argmax_and_skips_pruned():
    t = _tree()
    scores = {cid: p_ucb(t.nodes["0"], t.nodes[cid], 4.0, 10.0) for cid in ("1", "2", "3")}
    best = max(scores, key=scores.get)
    assert best == "2"  # unvisited, decent prior: exploration wins
    assert select_path(t, 4.0, 10.0) == ["0", "2"]
    t.nodes["2"].pruned = True
    rest = {cid: scores[cid] for cid in ("1", "3")}
    assert select_path(t, 4.0, 10.0) == ["0", max(rest, key=rest.get)]
    # with no exploration (c=0, huge base) the highest Q wins
    assert select_path(t, 0.0, 1e12) == ["0", "3"]


def test_first_visit_has_no_exploration_term():
    t = _tree()
    t.nodes["0"].visits = 1  # log 1 = 0: pure exploitation
    assert select_path(t, 4.0, 10.0) == ["0", "3"]


def test_dead_subtrees_and_exhausted_tree():
    t = _tree()
    t.nodes["1"].children = ["4"]
    t.nodes["4"] = Node("4", "1", "d", "A", 1.0, 2, pruned=True)
    for cid in ("2", "3"):
        t.nodes[cid].pruned = True
    assert select_path(t, 4.0, 10.0) is None  # 1 is expanded with only a pruned child


def test_node_value_eq11_and_backup():
    assert node_value(0.5, False, 0.9) == 0.45
    assert node_value(0.5, True, 0.9) == 0.5
    assert combine(0.3, 2, 0.6, "max") == 0.6
    assert combine(0.3, 2, 0.0, "max") == 0.3
    assert combine(0.0, 0, 0.2, "max") == 0.2
    assert math.isclose(combine(0.3, 2, 0.6, "mean"), 0.4)
    t = _tree()
    q, n = backup_values(t, ["0", "1"], 0.9, "max")
    assert q == {"0": 0.9, "1": 0.9} and n == {"0": 6, "1": 4}
    q, n = backup_values(t, ["0", "3"], 0.0, "mean")
    assert math.isclose(q["0"], 0.5 - 0.5 / 6) and math.isclose(q["3"], 0.35) and n == {"0": 6, "3": 2}
