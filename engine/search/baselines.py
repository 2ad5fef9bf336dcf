"""Baselines behind the same Strategy interface, events, budget accounting and metrics.

Every baseline is a one-model method, as the paper's rows are (one row per model, never a
best-of-N across models chosen on public tests): it searches with the first agent only, and
``bdc search`` given several agents for a baseline starts one run per agent.

* zero-shot: the root simulation only (the model writes one solution from the bare problem).
* Reflexion: iterative self-reflection on public-test feedback; each reflection becomes the
  next state of a chain and the model rewrites the solution from it.
* ToT: breadth-first over thoughts; each level expands the frontier with the model's
  thoughts, values the children by their pass rate and keeps the best ``beam_width``.
* LATS-style MCTS over whole solutions: a node is one solution; expanding it means the model
  reflects on its solution of the parent and writes a revised one; UCT selection (uniform
  prior) with mean backup, as in LATS.
* RethinkMCTS (``engine.search.rethink``): MCTS over thoughts whose failing thoughts are
  rewritten from block-level execution feedback.
"""

from __future__ import annotations

from typing import Any

from engine.search import events as ev
from engine.search.context import ProblemContext
from engine.search.puct import select_path
from engine.search.strategy import Strategy
from engine.search.tree import Node


class ZeroShot(Strategy):
    name = "zero-shot"
    single_policy = True
    description = "one solution per policy from the bare problem"

    async def search(self, px: ProblemContext) -> None:
        return None


def _path_to(px: ProblemContext, node_id: str) -> list[str]:
    out: list[str] = []
    node: Node | None = px.tree.nodes[node_id]
    while node is not None:
        out.append(node.id)
        node = px.tree.nodes[node.parent] if node.parent else None
    return out[::-1]


class Reflexion(Strategy):
    name = "reflexion"
    single_policy = True
    description = "iterative self-reflection on public-test feedback (Shinn et al.)"

    async def search(self, px: ProblemContext) -> None:
        node = px.tree.nodes["0"]
        for rollout in range(1, self.config.rollouts + 1):
            path = _path_to(px, node.id)
            px.emit(ev.SELECT, {"path": path, "rollout": rollout}, node_id=node.id)
            reflector = px.policies[(rollout - 1) % len(px.policies)]
            attempt = node.best_solution()
            summary, err = await px.compute_reflection(node.id, rollout, reflector, attempt)
            px.emit_reflection(node.id, rollout, reflector, summary, err)
            if summary is None:
                px.backup(path, 0.0, rollout)
                px.emit(ev.ROLLOUT_FINISHED, {"rollout": rollout})
                continue
            [child_id] = px.expand_with(
                node, rollout, [{"thought": f"Reflection: {summary}", "policy": reflector.name, "prior": 1.0}]
            )
            await px.simulate([child_id], rollout)
            child = px.tree.nodes[child_id]
            px.backup(path, px.value(child), rollout, leaves={child_id: px.value(child)})
            px.emit(ev.ROLLOUT_FINISHED, {"rollout": rollout})
            node = child
            if self.should_stop(px):
                return


class TreeOfThoughts(Strategy):
    name = "tot"
    single_policy = True
    description = "Tree of Thoughts, breadth-first with pass-rate value estimates and a beam"

    async def search(self, px: ProblemContext) -> None:
        frontier = [px.tree.nodes["0"]]
        rollout = 0
        for _depth in range(self.config.max_depth):
            frontier = [n for n in frontier if not n.terminal][: max(self.config.rollouts - rollout, 0)]
            if not frontier:
                return
            rollouts = list(range(rollout + 1, rollout + 1 + len(frontier)))
            rollout += len(frontier)
            computed = await px.gather([px.compute_children(n, r) for n, r in zip(frontier, rollouts)])
            level: list[tuple[list[str], int, list[str]]] = []
            for n, r, comp in zip(frontier, rollouts, computed):
                path = _path_to(px, n.id)
                px.emit(ev.SELECT, {"path": path, "rollout": r}, node_id=n.id)
                level.append((path, r, px.emit_expand(n, r, comp)))
            await px.simulate([c for _, _, ids in level for c in ids], rollouts[-1])
            for path, r, ids in level:
                values = {i: px.value(px.tree.nodes[i]) for i in ids}
                px.backup(path, max(values.values(), default=0.0), r, leaves=values)
                px.emit(ev.ROLLOUT_FINISHED, {"rollout": r})
            if self.should_stop(px):
                return
            children = [px.tree.nodes[c] for _, _, ids in level for c in ids]
            ranked = sorted(children, key=lambda n: -(n.pass_rate or 0.0))  # stable: ties keep order
            frontier = ranked[: self.config.beam_width]


class LATS(Strategy):
    name = "lats"
    single_policy = True
    description = "LATS-style MCTS over whole solutions with self-reflection (Zhou et al.)"

    async def search(self, px: ProblemContext) -> None:
        cfg = self.config
        by_name = {p.name: p for p in px.policies}
        for rollout in range(1, cfg.rollouts + 1):
            path = select_path(px.tree, cfg.c_puct, cfg.c_base)
            if path is None:
                px.emit(ev.BUDGET_EXHAUSTED, {"reason": "tree exhausted"})
                return
            px.emit(ev.SELECT, {"path": path, "rollout": rollout}, node_id=path[-1])
            leaf = px.tree.nodes[path[-1]]
            if leaf.terminal or leaf.depth >= cfg.max_depth:
                px.backup(path, px.value(leaf), rollout, mode="mean")
            else:
                await self._expand(px, leaf, path, rollout, by_name)
            px.emit(ev.ROLLOUT_FINISHED, {"rollout": rollout})
            if self.should_stop(px):
                return

    async def _expand(self, px: ProblemContext, leaf: Node, path: list[str], rollout: int, by_name: dict) -> None:
        def own(p: Any) -> dict | None:
            mine = [s for s in leaf.solutions if s.get("policy") == p.name]
            return mine[0] if mine else leaf.best_solution()

        reflections = await px.gather([px.compute_reflection(leaf.id, rollout, p, own(p)) for p in px.policies])
        children = []
        prior = 1.0 / len(px.policies)
        for p, (summary, err) in zip(px.policies, reflections):
            px.emit_reflection(leaf.id, rollout, p, summary, err)
            if summary is not None:
                children.append({"thought": f"Revise: {summary}", "policy": p.name, "prior": prior})
        ids = px.expand_with(leaf, rollout, children) if children else []
        if not ids:
            px.backup(path, 0.0, rollout, mode="mean")
            return
        await px.simulate(ids, rollout, lambda nid: [by_name.get(px.tree.nodes[nid].policy, px.policies[0])])
        values = {i: px.value(px.tree.nodes[i]) for i in ids}
        px.backup(path, max(values.values()), rollout, leaves=values, mode="mean")
