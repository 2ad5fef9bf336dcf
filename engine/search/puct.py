"""The arithmetic of the search: P-UCB selection (eq. 3), node values (eq. 11), backup (eq. 5-6).

Pure functions over ``engine.search.tree`` nodes so they can be tested on hand-built trees.
"""

from __future__ import annotations

import math

from engine.search.tree import Node, ProblemTree


def exploration_weight(parent_visits: int, c: float, base: float) -> float:
    """PG-TD / RethinkMCTS: c grows slowly with the parent's visits, log((N + base + 1) / base) + c."""
    return math.log((parent_visits + base + 1.0) / base) + c


def p_ucb(parent: Node, child: Node, c: float, base: float) -> float:
    """Eq. 3: Q(S_c) + c * P(a|S_p) * sqrt(log N(S)) / (1 + N(S_c)).

    The value term is the child's Q (eq. 3 writes Q(S), but only the child's value makes the
    choice depend on the child); ``log`` is taken of at least 1 visit.
    """
    n = max(parent.visits, 1)
    explore = exploration_weight(parent.visits, c, base) * child.prior * math.sqrt(math.log(n)) / (1 + child.visits)
    return child.value + explore


def node_value(pass_rate: float, terminal: bool, gamma: float) -> float:
    """Eq. 11: r_T (the terminal state's own pass rate) if terminal, else gamma * PR(S)."""
    return pass_rate if terminal else gamma * pass_rate


def combine(old_q: float, old_n: int, reward: float, mode: str) -> float:
    """f of eq. 5: max (PG-TD, RethinkMCTS) or the running mean of rewards."""
    if mode == "max":
        return reward if old_n == 0 else max(old_q, reward)
    return old_q + (reward - old_q) / (old_n + 1)


def backup_values(
    tree: ProblemTree, path: list[str], reward: float, mode: str
) -> tuple[dict[str, float], dict[str, int]]:
    """New Q and N of every node on ``path`` after backing up ``reward`` (eq. 5-6)."""
    q: dict[str, float] = {}
    n: dict[str, int] = {}
    for nid in path:
        node = tree.nodes[nid]
        q[nid] = combine(node.value, node.visits, reward, mode)
        n[nid] = node.visits + 1
    return q, n


def live(tree: ProblemTree, node: Node) -> bool:
    """Selectable: not pruned and not an expanded node whose children are all dead."""
    if node.pruned:
        return False
    if not node.children:
        return True
    return any(live(tree, tree.nodes[c]) for c in node.children if c in tree.nodes)


def select_path(tree: ProblemTree, c: float, base: float) -> list[str] | None:
    """Descend from the root by P-UCB over live children (ties: first child). None: no live leaf."""
    root = tree.root
    if root is None or not live(tree, root):
        return None
    path = [root.id]
    node = root
    while node.children:
        cands = [tree.nodes[cid] for cid in node.children if live(tree, tree.nodes[cid])]
        best = max(cands, key=lambda ch: p_ucb(node, ch, c, base))  # max keeps the first on ties
        path.append(best.id)
        node = best
    return path
