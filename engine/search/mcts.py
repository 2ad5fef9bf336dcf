"""MC-Tree-Of-Agents (paper 4.1): P-UCB select, multi-policy expand, collective simulate,
backup, and the Prune / Refine operations the official release defines but never calls.

One rollout:

1. **Select** (eq. 3) from the root over live (not pruned, not exhausted) children to a leaf.
2. A terminal leaf (depth limit or a semantic end) is not expanded: its reward r_T is backed up.
3. **Expand** (eq. 4): every policy proposes ``thoughts_per_policy`` thoughts, concurrently.
4. **Simulate** (eq. 9-10): every policy writes a full solution from every new child, all
   concurrently; PR(child) is the mean public pass rate.
   If a solution passed every public test and ``stop_on_solve`` is set, the rollout backs up
   and ends here: pruning or refining now could only lose that solution.
5. **Prune**: a child with PR(child) < PR(parent) is ill: pruned (removed from selection) with
   an instant zero-reward backup "to downweight its ancestors" (paper 4.1.1). Under f = max a
   zero reward cannot lower any Q (max(Q, 0) = Q) and only N would grow, so this backup always
   averages the zero in: Q <- Q + (0 - Q) / (N + 1) along the path, whatever f the rollout
   backups use. Later max backups can raise Q again only with a reward actually reached.
6. **Refine** (eq. 7-8): while the global and per-node limits allow, a *different* policy
   summarises the ill node's failure and its author rewrites the thought; the refined node
   replaces the ill one in place, is simulated, and is pruned again if still ill. A node
   holding a solution that passed every public test is pruned if ill but never refined:
   the refinement replaces the node, solutions included.
7. **Backup** (eq. 5-6, 11): the live children get Q = value(child), N = 1; the path gets the
   best child value with f = max (or mean), N += 1.
"""

from __future__ import annotations

from dataclasses import replace

from engine.search import events as ev
from engine.search.config import SearchConfig
from engine.search.context import ProblemContext
from engine.search.puct import select_path
from engine.search.strategy import Strategy


class MCTreeOfAgents(Strategy):
    name = "mcts"
    description = "MC-Tree-Of-Agents with pruning and refinement (paper 4.1)"

    async def search(self, px: ProblemContext) -> None:
        cfg = self.config
        for rollout in range(1, cfg.rollouts + 1):
            path = select_path(px.tree, cfg.c_puct, cfg.c_base)
            if path is None:
                px.emit(
                    ev.BUDGET_EXHAUSTED, ev.BudgetExhausted(reason="tree exhausted: every branch is pruned or terminal")
                )
                return
            await self.rollout(px, path, rollout)
            px.emit(ev.ROLLOUT_FINISHED, ev.RolloutFinished(rollout=rollout))
            if self.should_stop(px):
                return

    async def rollout(self, px: ProblemContext, path: list[str], rollout: int) -> None:
        px.emit(ev.SELECT, ev.Select(path=path, rollout=rollout), node_id=path[-1])
        leaf = px.tree.nodes[path[-1]]
        if leaf.terminal or leaf.depth >= self.config.max_depth:
            px.backup(path, px.value(leaf), rollout)
            return
        ids = await px.propose(leaf, rollout)
        if not ids:  # every policy failed: count the visit, learn nothing
            px.backup(path, 0.0, rollout)
            return
        await px.simulate(ids, rollout)
        if self.config.prune and not self.should_stop(px):
            await self.prune_and_refine(px, path, ids, rollout)
        alive = [i for i in ids if not px.tree.nodes[i].pruned]
        values = {i: px.value(px.tree.nodes[i]) for i in alive}
        reward = max(values.values(), default=0.0)
        px.backup(path, reward, rollout, leaves=values)

    def ill(self, px: ProblemContext, parent_pr: float, node_id: str) -> bool:
        """The paper's monotonicity principle: PR(S_t) <= PR(S_t+1); a drop marks an ill node."""
        pr = px.tree.nodes[node_id].pass_rate
        return pr is not None and pr < parent_pr

    def prune(self, px: ProblemContext, path: list[str], node_id: str, parent_pr: float, rollout: int) -> None:
        node = px.tree.nodes[node_id]
        px.emit(
            ev.PRUNE,
            ev.Prune(
                node=node_id, parent=path[-1], rollout=rollout, pass_rate=node.pass_rate, parent_pass_rate=parent_pr
            ),
            node_id=node_id,
        )
        px.backup(path, 0.0, rollout, leaves={node_id: 0.0}, mode="mean")  # instant zero-reward backup: downweights

    async def prune_and_refine(self, px: ProblemContext, path: list[str], ids: list[str], rollout: int) -> None:
        parent_pr = px.tree.nodes[path[-1]].pass_rate or 0.0
        ill = [i for i in ids if self.ill(px, parent_pr, i)]
        for i in ill:
            self.prune(px, path, i, parent_pr, rollout)
        if not self.config.refine:
            return
        # rounds: each still-ill node gets one refinement per round; the global quota is
        # handed out in child order before any call, so concurrent rounds stay deterministic
        while ill:
            quota = self.config.refine_limit - px.tree.refinements
            todo = [
                i
                for i in ill
                if px.tree.nodes[i].refinements < self.config.refine_limit_per_node
                and not px.tree.nodes[i].solves_public()
            ][: max(quota, 0)]
            if not todo:
                return
            refined = await px.refine_nodes(todo, rollout)
            if not refined:
                return
            await px.simulate(refined, rollout)
            if self.should_stop(px):
                return
            ill = [i for i in refined if self.ill(px, parent_pr, i)]
            for i in ill:
                self.prune(px, path, i, parent_pr, rollout)


class SingleMCTreeOfAgents(MCTreeOfAgents):
    name = "mcts-single"
    description = "MC-Tree-Of-Agents with one policy (the paper's 'Single' rows): the first agent"
    single_policy = True


class MCTSNoPrune(MCTreeOfAgents):
    name = "mcts-noprune"
    description = "ablation: MC-Tree-Of-Agents without pruning (and so without refinement)"

    def __init__(self, config: SearchConfig) -> None:
        super().__init__(replace(config, prune=False, refine=False))


class MCTSNoRefine(MCTreeOfAgents):
    name = "mcts-norefine"
    description = "ablation: MC-Tree-Of-Agents with pruning but without refinement"

    def __init__(self, config: SearchConfig) -> None:
        super().__init__(replace(config, refine=False))
