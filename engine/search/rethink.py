"""RethinkMCTS (Li et al., 2024, arXiv 2409.09584) behind the Strategy interface.

Monte Carlo tree search over reasoning steps with one model, like MC-Tree-Of-Agents'
single-policy row, but where MC-Tree-Of-Agents prunes a step that lowers the pass rate and
has *another* policy reflect on it, RethinkMCTS **rethinks** every step whose code fails a
public test: the code's execution is turned into fine-grained verbal feedback (each failed
test with its input, expected and actual result, and the code split into blocks with the
program state after each block on a failed test: ``engine.search.blocks``), the model
reflects on it block by block, and the erroneous thought is rewritten in place from that
reflection and simulated again, up to ``refine_limit_per_node`` times per step and
``refine_limit`` per problem. Nothing is pruned; values are the public pass rate (Eq. 11's
Q) backed up with ``config.backup`` (max, as in RethinkMCTS).

Not reproduced: the original also mixes an LLM self-evaluation (0.2 weight) into the value
of a state whose code passes every public test; here a passing state ends the search (stop
on solve) or keeps its pass-rate value.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.agents.types import BudgetExceeded
from engine.search import events as ev
from engine.search.blocks import describe_failures, instrument
from engine.search.config import SearchConfig
from engine.search.context import ProblemContext
from engine.search.mcts import MCTreeOfAgents
from engine.search.tree import Node


class RethinkMCTS(MCTreeOfAgents):
    """MC-Tree-Of-Agents' select / expand / simulate / backup with one model, where the step
    after simulation rethinks failing thoughts instead of pruning ill ones."""

    name = "rethinkmcts"
    description = "RethinkMCTS: MCTS over thoughts; failing thoughts rethought from block-level execution feedback"
    single_policy = True  # a one-model method: one row per model

    def __init__(self, config: SearchConfig) -> None:
        super().__init__(replace(config, prune=True, refine=True))

    async def prune_and_refine(self, px: ProblemContext, path: list[str], ids: list[str], rollout: int) -> None:
        """Nothing is pruned: every failing child is rethought in place."""
        await self.rethink(px, ids, rollout)

    def failing(self, px: ProblemContext, node_id: str) -> bool:
        node = px.tree.nodes[node_id]
        return node.pass_rate is not None and node.pass_rate < 1.0 and px.tree.solved_by is None

    async def rethink(self, px: ProblemContext, ids: list[str], rollout: int) -> None:
        """Rounds of feedback -> reflection -> rewritten thought -> simulation for the failing
        children; the quota is handed out in child order before any call (deterministic)."""
        todo = [i for i in ids if self.failing(px, i)]
        while todo:
            quota = self.config.refine_limit - px.tree.refinements
            todo = [i for i in todo if px.tree.nodes[i].refinements < self.config.refine_limit_per_node][
                : max(quota, 0)
            ]
            if not todo:
                return
            chains = await px.gather([self._rethink_one(px, i, rollout) for i in todo])
            rewritten = []
            for nid, (summary, new_thought, errors) in zip(todo, chains):
                node = px.tree.nodes[nid]
                author = px.policy(node.policy)
                for stage, msg in errors:
                    px.emit(ev.LLM_ERROR, {"policy": author.name, "stage": stage, "message": msg[:500]})
                if summary is not None:
                    px.emit_reflection(nid, rollout, author, summary, None)
                if new_thought is not None:
                    px.emit(
                        ev.REFINE,
                        {
                            "node": nid,
                            "rollout": rollout,
                            "policy": author.name,
                            "old_thought": node.thought,
                            "new_thought": new_thought,
                            "summary": summary,
                        },
                        node_id=nid,
                    )
                    rewritten.append(nid)
            if not rewritten:
                return
            await px.simulate(rewritten, rollout)
            todo = [i for i in rewritten if self.failing(px, i)]

    async def _rethink_one(self, px: ProblemContext, nid: str, rollout: int) -> tuple[str | None, str | None, list]:
        """(reflection, rewritten thought, errors) for one failing node, without emitting."""
        node = px.tree.nodes[nid]
        author = px.policy(node.policy)
        sol = _own_solution(node)
        errors: list[tuple[str, str]] = []
        feedback = await block_feedback(px, sol.get("code", "") if sol else "")
        attempt = dict(sol or {}, feedback=feedback or (sol or {}).get("feedback", ""))
        summary, err = await px.compute_reflection(nid, rollout, author, attempt)
        if summary is None:
            errors.append(("reflect", err or "empty reflection"))
            return None, None, errors
        stored = px.recorded(ev.REFINE, node=nid, rollout=rollout)
        if stored is not None:
            return summary, stored.new_thought, errors
        parent_path = px.tree.path_thoughts(node.parent) if node.parent else []
        try:
            new = await author.refine(
                px.view, parent_path, node.thought, summary, node.pass_rate or 0.0, ctx=px.ctx(nid, node.refinements)
            )
        except BudgetExceeded:
            raise
        except Exception as e:  # noqa: BLE001 - a failing policy call must not sink the search
            errors.append(("refine", f"{type(e).__name__}: {e}"))
            return summary, None, errors
        if not str(new or "").strip():
            errors.append(("refine", "empty refinement"))
            return summary, None, errors
        return summary, str(new).strip(), errors


def _own_solution(node: Node) -> dict[str, Any] | None:
    """The node author's solution (RethinkMCTS has one model: the only one)."""
    mine = [s for s in node.solutions if s.get("policy") == node.policy and not s.get("error")]
    return mine[0] if mine else node.best_solution()


async def block_feedback(px: ProblemContext, code: str) -> str:
    """Fine-grained feedback for ``code``: the public tests' results in detail and a block
    trace of the first failed one, both run in the sandbox."""
    tests = list(px.problem.public_tests)
    if not code.strip() or not tests:
        return ""
    res = await px.sandbox.run(code, px.problem, tests)
    results = list(getattr(res, "results", []))
    first = next((i for i, r in enumerate(results) if not getattr(r, "passed", False)), None)
    trace = None
    traced = instrument(code) if first is not None else None
    if traced is not None:
        trace_res = await px.sandbox.run(traced, px.problem, [tests[first]])
        trace = (getattr(trace_res, "results", None) or [None])[0]
    return describe_failures(code, results, trace)
