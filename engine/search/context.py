"""ProblemContext: the operations a strategy searches one problem with.

Expand (eq. 4), simulate (eq. 9-10), backup (eq. 5-6), reflect and refine (eq. 7-8): each
calls the policies and the sandbox, then records its outcome as events. Recording goes
through the problem's ``Journal`` (engine/search/journal.py), the only writer of the tree,
which also replays stored events on resume: an operation first asks ``recorded`` for a
stored result and calls a policy only when there is none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from enum import Enum
from typing import Any

from engine.agents.types import BudgetExceeded, CallContext
from engine.problems.model import Problem, TestCase
from engine.search import events as ev
from engine.search.config import SearchConfig
from engine.search.journal import Journal, ResumeDivergence
from engine.search.puct import backup_values, node_value
from engine.search.tree import Node, ProblemTree, TreeState
from engine.store.records import Event

__all__ = ["ProblemContext", "ResumeDivergence"]


class ProblemContext:
    """One problem under search: its journal (tree + events), policies, sandbox, config, operations."""

    def __init__(
        self,
        *,
        store: Any,
        run_id: str,
        problem: Problem,
        state: TreeState,
        policies: Sequence[Any],
        sandbox: Any,
        config: SearchConfig,
        journal: Iterable[Event] = (),
        sequential: bool = False,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.problem = problem
        self.view = problem.prompt_view()  # the only problem a policy ever sees
        self.state = state
        self.journal = Journal(store=store, run_id=run_id, problem_id=problem.id, state=state, stored=journal)
        self.tree: ProblemTree = self.journal.tree
        self.policies = list(policies)
        self.sandbox = sandbox
        self.config = config
        self.sequential = sequential
        self.started = self.journal.started

    # ------------------------------------------------------------------ the journal
    def emit(self, kind: str, payload: Any, node_id: str | None = None) -> None:
        """Record an event through the journal (see ``Journal.emit``)."""
        self.journal.emit(kind, payload, node_id)

    def recorded(self, kind: str, **match: Any) -> Any | None:
        return self.journal.recorded(kind, **match)

    def ctx(self, node_id: str | None, sample_index: int = 0) -> CallContext:
        return CallContext(run_id=self.run_id, problem_id=self.problem.id, node_id=node_id, sample_index=sample_index)

    async def gather(self, coros: Sequence[Awaitable[Any]]) -> list[Any]:
        """All at once, or one after the other in ``sequential`` mode; results in input order."""
        if self.sequential:
            out: list[Any] = []
            try:
                for c in coros:
                    out.append(await c)
            finally:
                for c in coros[len(out) + 1 :]:  # not started after a failure: close, don't leak
                    close = getattr(c, "close", None)
                    if close is not None:
                        close()
            return out
        return list(await asyncio.gather(*coros))

    # ------------------------------------------------------------------ policy calls
    async def _guard(self, policy: Any, stage: str, call: Callable[[], Awaitable[Any]]) -> tuple[Any, str | None]:
        """Run one policy call; a policy failure becomes an error message (budget stops propagate)."""
        try:
            return await call(), None
        except (BudgetExceeded, asyncio.CancelledError):
            raise
        except Exception as e:  # noqa: BLE001 - a failing policy must not sink the search
            return None, f"{type(e).__name__}: {e}"

    def _llm_error(self, policy: Any, stage: str, message: str) -> None:
        self.emit(ev.LLM_ERROR, ev.LLMError(policy=policy.name, stage=stage, message=message[:500]))

    def policy(self, name: str | None) -> Any:
        for p in self.policies:
            if p.name == name:
                return p
        return self.policies[0]

    def other_policy(self, name: str | None) -> Any:
        """A policy distinct from ``name`` (the next one in order) to avoid self-bootstrapping bias."""
        names = [p.name for p in self.policies]
        if name in names and len(names) > 1:
            return self.policies[(names.index(name) + 1) % len(names)]
        return self.policy(name)

    # ------------------------------------------------------------------ operations
    def is_terminal(self, text: str, depth: int) -> bool:
        return depth >= self.config.max_depth or (
            bool(self.config.terminal_marker) and self.config.terminal_marker in text
        )

    async def compute_children(
        self, parent: Node, rollout: int, policies: Sequence[Any] | None = None
    ) -> dict[str, Any]:
        """Eq. 4 without emitting: every policy proposes thoughts for ``parent`` concurrently.

        Ids are assigned later, in ``emit_expand``, so concurrent expansions stay deterministic.
        """
        stored = self.recorded(ev.EXPAND, parent=parent.id, rollout=rollout)
        if stored is not None:
            return {"children": [c.to_dict() for c in stored.children], "errors": []}
        pols = list(policies or self.policies)
        path = self.tree.path_thoughts(parent.id)
        k = self.config.thoughts_per_policy

        def one(p: Any) -> Awaitable[Any]:
            return self._guard(p, "thoughts", lambda: p.propose_thoughts(self.view, path, k, ctx=self.ctx(parent.id)))

        results = await self.gather([one(p) for p in pols])
        children: list[dict[str, Any]] = []
        errors: list[tuple[Any, str, str]] = []
        for p, (thoughts, err) in zip(pols, results):
            if err is not None:
                errors.append((p, "thoughts", err))
                continue
            for t in thoughts or []:
                text = str(t.text).strip()
                if text:
                    children.append({"thought": text, "policy": t.policy or p.name, "prior": float(t.prior)})
        return {"children": children, "errors": errors}

    def emit_expand(self, parent: Node, rollout: int, computed: dict[str, Any]) -> list[str]:
        """Give the computed children ids, depth and terminal flags; emit ``expand``; return their ids."""
        for pol, stage, msg in computed["errors"]:
            self._llm_error(pol, stage, msg)
        children = []
        for c in computed["children"]:
            c = dict(c)
            if "node" not in c:
                depth = parent.depth + 1
                c.update(node=self.journal.new_id(), depth=depth, terminal=self.is_terminal(c["thought"], depth))
            else:
                self.journal.reserve_id(str(c["node"]))
            children.append(ev.Child(**{k: c[k] for k in ("node", "thought", "policy", "prior", "depth", "terminal")}))
        if children:
            self.emit(ev.EXPAND, ev.Expand(parent=parent.id, rollout=rollout, children=children), node_id=parent.id)
        return [c.node for c in children]

    async def propose(self, parent: Node, rollout: int, policies: Sequence[Any] | None = None) -> list[str]:
        """Expand ``parent`` with every policy's thoughts; returns the new child ids."""
        return self.emit_expand(parent, rollout, await self.compute_children(parent, rollout, policies))

    def expand_with(self, parent: Node, rollout: int, children: list[dict[str, Any]]) -> list[str]:
        """Expand with given thoughts (``{thought, policy, prior}``), e.g. reflections (Reflexion, LATS)."""
        stored = self.recorded(ev.EXPAND, parent=parent.id, rollout=rollout)
        if stored is not None:
            children = [c.to_dict() for c in stored.children]
        return self.emit_expand(parent, rollout, {"children": children, "errors": []})

    async def _solution(self, p: Any, node_id: str, path: list[str]) -> ev.Solution:
        sol, err = await self._guard(p, "solution", lambda: p.write_solution(self.view, path, ctx=self.ctx(node_id)))
        total = len(self.problem.public_tests)
        if err is not None:
            return ev.Solution(policy=p.name, total=total, parse_error=err, error=True)
        code = sol.code or ""
        if not code.strip():
            return ev.Solution(
                policy=p.name,
                code=code,
                total=total,
                parse_error=sol.parse_error,
                feedback=f"no code: {sol.parse_error or 'empty reply'}",
            )
        res = await self.run_tests(code, self.problem.public_tests, node_id=node_id, policy=p.name)
        return ev.Solution(policy=p.name, code=code, parse_error=sol.parse_error, **res)

    async def run_tests(
        self, code: str, tests: list[TestCase], *, node_id: str | None, policy: str | None
    ) -> dict[str, Any]:
        """Run ``code`` in the sandbox; the verdict summary a node keeps."""
        res = await self.sandbox.run(code, self.problem, tests)
        if self.store is not None:
            self.store.record_sandbox_run(
                run_id=self.run_id, problem_id=self.problem.id, node_id=node_id, policy=policy, result=res
            )
        verdicts = [r.verdict.value if isinstance(r.verdict, Enum) else str(r.verdict) for r in res.results]
        passed = sum(1 for r in res.results if r.passed)
        return {
            "pass_rate": float(res.pass_rate),
            "passed": passed,
            "total": len(res.results),
            "verdicts": verdicts,
            "feedback": str(res.summary),
        }

    async def _simulate_one(self, node_id: str, rollout: int, policies: Sequence[Any]) -> ev.Simulate:
        stored = self.recorded(ev.SIMULATE, node=node_id, rollout=rollout)
        if stored is not None:
            return stored
        path = self.tree.path_thoughts(node_id)
        sols = await self.gather([self._solution(p, node_id, path) for p in policies])
        # eq. 10 divides by the number of policies n: a failed call is a solution that passed nothing
        pr = sum(0.0 if s.error else s.pass_rate for s in sols) / len(sols) if sols else 0.0
        return ev.Simulate(node=node_id, rollout=rollout, pass_rate=pr, solutions=sols)

    async def simulate(
        self,
        node_ids: Sequence[str],
        rollout: int,
        policies: Sequence[Any] | Callable[[str], Sequence[Any]] | None = None,
    ) -> None:
        """Eq. 9-10 for several nodes at once (every policy writes a solution from each state).

        ``policies`` may be a function of the node id (LATS: a node is one policy's solution).
        """

        def pols(nid: str) -> list[Any]:
            if callable(policies):
                return list(policies(nid))
            return list(policies or self.policies)

        payloads = await self.gather([self._simulate_one(n, rollout, pols(n)) for n in node_ids])
        for payload in payloads:
            for s in payload.solutions:
                if s.error:
                    self._llm_error(self.policy(s.policy), "solution", s.parse_error or "error")
            self.emit(ev.SIMULATE, payload, node_id=payload.node)
            self._check_solved(payload.node)

    def _check_solved(self, node_id: str) -> None:
        node = self.tree.nodes[node_id]
        if self.tree.solved_by is not None or not node.solves_public():
            return
        for s in node.solutions:
            if s.get("total") and s.get("passed") == s.get("total"):
                self.emit(
                    ev.SOLUTION_FOUND,
                    ev.SolutionFound(node=node_id, policy=s["policy"], code=s["code"], public_pass_rate=s["pass_rate"]),
                    node_id=node_id,
                )
                return

    def value(self, node: Node) -> float:
        return node_value(node.pass_rate or 0.0, node.terminal, self.config.gamma)

    def backup(
        self,
        path: list[str],
        reward: float,
        rollout: int,
        leaves: dict[str, float] | None = None,
        mode: str | None = None,
    ) -> None:
        """Eq. 5-6 along ``path`` plus first values/visits of freshly simulated ``leaves``."""
        q, n = backup_values(self.tree, path, reward, mode or self.config.backup)
        for nid, v in (leaves or {}).items():
            q[nid] = v
            n[nid] = self.tree.nodes[nid].visits + 1
        self.emit(
            ev.BACKUP,
            ev.Backup(rollout=rollout, path=list(path), reward=reward, q=q, n=n),
            node_id=path[-1] if path else None,
        )

    async def compute_reflection(
        self, node_id: str, rollout: int, reflector: Any, solution: dict[str, Any] | None
    ) -> tuple[str | None, str | None]:
        """A reflection on one of the node's solutions, without emitting (journal-aware)."""
        stored = self.recorded(ev.REFLECT, node=node_id, rollout=rollout, policy=reflector.name)
        if stored is not None:
            return stored.summary, None
        code = solution.get("code", "") if solution else ""
        feedback = (solution.get("feedback") or solution.get("parse_error") or "") if solution else ""
        value = float(solution.get("pass_rate", 0.0)) if solution else 0.0
        path = self.tree.path_thoughts(node_id)
        summary, err = await self._guard(
            reflector,
            "reflect",
            lambda: reflector.reflect(self.view, path, code, feedback, value, ctx=self.ctx(node_id)),
        )
        if err is None and not str(summary or "").strip():
            err = "empty reflection"
        return (None, err) if err is not None else (str(summary).strip(), None)

    def emit_reflection(self, node_id: str, rollout: int, reflector: Any, summary: str | None, err: str | None) -> None:
        if err is not None:
            self._llm_error(reflector, "reflect", err)
        else:
            self.emit(
                ev.REFLECT,
                ev.Reflect(node=node_id, rollout=rollout, policy=reflector.name, summary=summary),
                node_id=node_id,
            )

    async def _refine_chain(self, node_id: str, rollout: int) -> dict[str, Any]:
        """Eq. 7-8 for one ill node, computed without emitting (the caller emits in order).

        A policy other than the author summarises the failure from the node's value, state and
        per-test feedback; the author rewrites its thought from that summary.
        """
        node = self.tree.nodes[node_id]
        reflector, author = self.other_policy(node.policy), self.policy(node.policy)
        out: dict[str, Any] = {"node": node_id, "reflector": reflector, "author": author, "errors": []}
        stored = self.recorded(ev.REFLECT, node=node_id, rollout=rollout)
        if stored is not None:
            out["summary"] = stored.summary
        else:
            sol = _worst_own_solution(node)
            code = sol.get("code", "") if sol else ""
            feedback = (sol.get("feedback") or sol.get("parse_error") or "") if sol else ""
            path = self.tree.path_thoughts(node_id)
            summary, err = await self._guard(
                reflector,
                "reflect",
                lambda: reflector.reflect(
                    self.view, path, code, feedback, node.pass_rate or 0.0, ctx=self.ctx(node_id, node.refinements)
                ),
            )
            if err is not None or not str(summary or "").strip():
                out["errors"].append((reflector, "reflect", err or "empty reflection"))
                return out
            out["summary"] = str(summary).strip()
        stored = self.recorded(ev.REFINE, node=node_id, rollout=rollout)
        if stored is not None:
            out["new_thought"] = stored.new_thought
            return out
        parent_path = self.tree.path_thoughts(node.parent) if node.parent else []
        new, err = await self._guard(
            author,
            "refine",
            lambda: author.refine(
                self.view,
                parent_path,
                node.thought,
                out["summary"],
                node.pass_rate or 0.0,
                ctx=self.ctx(node_id, node.refinements),
            ),
        )
        if err is not None or not str(new or "").strip():
            out["errors"].append((author, "refine", err or "empty refinement"))
            return out
        out["new_thought"] = str(new).strip()
        return out

    async def refine_nodes(self, node_ids: Sequence[str], rollout: int) -> list[str]:
        """Reflect + rewrite several ill nodes concurrently; emit in node order; return the refined ids."""
        chains = await self.gather([self._refine_chain(i, rollout) for i in node_ids])
        refined: list[str] = []
        for c in chains:
            nid = c["node"]
            for pol, stage, msg in c["errors"]:
                self._llm_error(pol, stage, msg)
            if "summary" in c:
                self.emit(
                    ev.REFLECT,
                    ev.Reflect(node=nid, rollout=rollout, policy=c["reflector"].name, summary=c["summary"]),
                    node_id=nid,
                )
            if "new_thought" in c:
                node = self.tree.nodes[nid]
                self.emit(
                    ev.REFINE,
                    ev.Refine(
                        node=nid,
                        rollout=rollout,
                        policy=c["author"].name,
                        old_thought=node.thought,
                        new_thought=c["new_thought"],
                        summary=c["summary"],
                    ),
                    node_id=nid,
                )
                refined.append(nid)
        return refined


def _worst_own_solution(node: Node) -> dict[str, Any] | None:
    """The solution the reflection should analyse: the node author's own, else the worst one."""
    own = [s for s in node.solutions if s.get("policy") == node.policy and not s.get("error")]
    pool = own or [s for s in node.solutions if not s.get("error")] or node.solutions
    return min(pool, key=lambda s: s.get("pass_rate", 0.0), default=None)
