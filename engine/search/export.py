"""Training examples from explored trees (the DisenLoRA stage's input, paper 4.2.1).

By default, as the paper defines D^{p2t} and D^{t2s} (one pair per problem, i in P) and as
the official release builds them, each **solved** problem (a solution passed every public
test) gives one pair per stage:

* ``p2t``: the problem -> the full chain of thoughts from the root to the solving node;
* ``t2s``: the problem and that chain -> the solving code.

Unsolved problems give nothing. ``per_node_examples`` is the finer variant (``bdc export
--per-node``): every simulated node gives a ``p2t`` pair (problem + reasoning before it ->
its thought, with PR(S), eq. 10) and a ``t2s`` pair per solution written there, pruned and
failing ones included unless filtered by pass rate.

Text formats (kept in one place so training and evaluation agree)::

    p2t input (per problem):  "Write the reasoning (numbered steps, no code) ..." + statement + starter block
    p2t output (per problem): steps
    p2t input (per node):  "Propose the next reasoning step (...) towards solving this problem in Python 3."
                           + statement + starter code block + "Reasoning so far:\n" + steps (blank-line separated)
    p2t output (per node): the thought (one or two sentences of prose)
    t2s input:  solve_prompt(statement, starter) [+ "\n\nReasoning:\n" + steps when there are any]
    t2s output: the code in one ```python block

``steps`` is ``Step 1: ...`` lines; with no steps the p2t history reads ``(none)`` and the t2s
input is exactly the prompt ``bdc eval`` uses (``engine.training.examples.solve_prompt``).
Identical (stage, input, output) pairs are written once, with their best pass rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.problems.model import statement_digest
from engine.search import events as ev
from engine.search.tree import TreeState
from engine.training.examples import TrainingExample, code_block, solve_prompt


def _steps(path: list[str]) -> str:
    return "\n".join(f"Step {i}: {t.strip()}" for i, t in enumerate(path, 1))


def p2t_input(statement: str, starter: str, path: list[str]) -> str:
    parts = [
        "Propose the next reasoning step (one or two sentences, no code) towards solving this problem in Python 3."
    ]
    if statement.strip():
        parts.append(statement.strip())
    if starter.strip() and starter.strip() not in statement:
        parts.append(f"```python\n{starter.strip(chr(10))}\n```")
    parts.append(f"Reasoning so far:\n{_steps(path) or '(none)'}")
    return "\n\n".join(parts)


def p2t_chain_input(statement: str, starter: str) -> str:
    """The per-problem p2t prompt: the whole reasoning is asked for at once."""
    parts = [
        "Write the reasoning (numbered steps of one or two sentences, no code) that solves this problem in Python 3."
    ]
    if statement.strip():
        parts.append(statement.strip())
    if starter.strip() and starter.strip() not in statement:
        parts.append(f"```python\n{starter.strip(chr(10))}\n```")
    return "\n\n".join(parts)


def t2s_input(statement: str, starter: str, path: list[str]) -> str:
    base = solve_prompt(statement, starter)
    return f"{base}\n\nReasoning:\n{_steps(path)}" if path else base


def examples_from_run(
    run_id: str,
    events: Iterable[Any],
    problems: dict[str, dict[str, Any]],
    *,
    stages: tuple[str, ...] = ("p2t", "t2s"),
) -> list[TrainingExample]:
    """The paper's data from one run: per solved problem, the chain of thoughts to the node
    whose solution passed every public test (p2t) and that code (t2s). ``problems`` maps
    problem id -> Problem dict (statement, starter_code)."""
    events = list(events)
    state = TreeState().apply_all(events)
    found: dict[str, dict[str, Any]] = {}  # problem -> its first solution_found payload
    for e in events:
        if e.kind == ev.SOLUTION_FOUND and e.problem_id not in found:
            found[e.problem_id] = e.payload_dict()
    out: list[TrainingExample] = []
    for pid, tree in state.problems.items():
        prob, hit = problems.get(pid), found.get(pid)
        if prob is None or hit is None or tree.solved_by is None or tree.solved_by not in tree.nodes:
            continue
        statement, starter = prob.get("statement", ""), prob.get("starter_code", "")
        node = tree.nodes[tree.solved_by]
        code = hit.get("code") or ""
        if not code.strip():  # the event of an older store: take the node's passing solution
            sol = node.best_solution() or {}
            code = sol.get("code", "") if float(sol.get("pass_rate", 0.0)) >= 1.0 else ""
        if not code.strip():
            continue
        path, digest = tree.path_thoughts(node.id), statement_digest(statement)
        if "p2t" in stages and path:
            out.append(
                TrainingExample(
                    "p2t", p2t_chain_input(statement, starter), _steps(path), 1.0, run_id, node.id, pid, digest
                )
            )
        if "t2s" in stages:
            out.append(
                TrainingExample(
                    "t2s", t2s_input(statement, starter, path), code_block(code), 1.0, run_id, node.id, pid, digest
                )
            )
    return out


def one_per_problem(examples: Iterable[TrainingExample]) -> list[TrainingExample]:
    """Keep the first pair of each (stage, problem) when several runs searched a problem."""
    seen: set[tuple[str, str]] = set()
    out = []
    for ex in examples:
        key = (ex.stage, ex.problem_id)
        if key not in seen:
            seen.add(key)
            out.append(ex)
    return out


def per_node_examples(
    run_id: str,
    events: Iterable[Any],
    problems: dict[str, dict[str, Any]],
    *,
    min_pass_rate: float = 0.0,
    stages: tuple[str, ...] = ("p2t", "t2s"),
) -> list[TrainingExample]:
    """Every simulated node's examples (the finer, non-paper variant); ``problems`` maps
    problem id -> Problem dict (statement, starter_code)."""
    state = TreeState().apply_all(events)
    best: dict[tuple[str, str, str], TrainingExample] = {}

    def add(ex: TrainingExample) -> None:
        if ex.pass_rate < min_pass_rate or ex.stage not in stages or not ex.output.strip():
            return
        key = (ex.stage, ex.input, ex.output)
        if key not in best or ex.pass_rate > best[key].pass_rate:
            best[key] = ex

    for pid, tree in state.problems.items():
        prob = problems.get(pid)
        if prob is None:
            continue
        statement, starter = prob.get("statement", ""), prob.get("starter_code", "")
        digest = statement_digest(statement)
        for node in sorted(tree.nodes.values(), key=lambda n: (n.depth, int(n.id) if n.id.isdigit() else 0)):
            if node.pass_rate is None:
                continue
            path = tree.path_thoughts(node.id)
            if node.parent is not None:
                add(
                    TrainingExample(
                        "p2t",
                        p2t_input(statement, starter, path[:-1]),
                        node.thought,
                        float(node.pass_rate),
                        run_id,
                        node.id,
                        pid,
                        digest,
                    )
                )
            for sol in node.solutions:
                code = sol.get("code") or ""
                if code.strip():
                    add(
                        TrainingExample(
                            "t2s",
                            t2s_input(statement, starter, path),
                            code_block(code),
                            float(sol.get("pass_rate", 0.0)),
                            run_id,
                            node.id,
                            pid,
                            digest,
                        )
                    )
    return list(best.values())
