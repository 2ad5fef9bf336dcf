"""Training examples from explored trees (the DisenLoRA stage's input, paper 4.2.1).

Every simulated node of a run's trees gives:

* a ``p2t`` pair (problem-to-thought): the problem and the reasoning before the node ->
  the node's thought, with the node's pass rate PR(S) (eq. 10);
* ``t2s`` pairs (thought-to-solution): the problem and the reasoning up to and including
  the node -> each solution a policy wrote there, with that solution's public pass rate.

Text formats (kept in one place so training and evaluation agree)::

    p2t input:  "Propose the next reasoning step (...) towards solving this problem in Python 3."
                + statement + starter code block + "Reasoning so far:\\n" + steps (blank-line separated)
    p2t output: the thought (one or two sentences of prose)
    t2s input:  solve_prompt(statement, starter) [+ "\\n\\nReasoning:\\n" + steps when there are any]
    t2s output: the code in one ```python block

``steps`` is ``Step 1: ...`` lines; with no steps the p2t history reads ``(none)`` and the t2s
input is exactly the prompt ``bdc eval`` uses (``engine.training.examples.solve_prompt``).
Identical (stage, input, output) pairs are written once, with their best pass rate.
"""

from __future__ import annotations

from typing import Any, Iterable

from engine.problems.model import statement_digest
from engine.search.tree import TreeState
from engine.training.examples import TrainingExample, code_block, solve_prompt


def _steps(path: list[str]) -> str:
    return "\n".join(f"Step {i}: {t.strip()}" for i, t in enumerate(path, 1))


def p2t_input(statement: str, starter: str, path: list[str]) -> str:
    parts = ["Propose the next reasoning step (one or two sentences, no code) towards solving this problem in Python 3."]
    if statement.strip():
        parts.append(statement.strip())
    if starter.strip() and starter.strip() not in statement:
        parts.append(f"```python\n{starter.strip(chr(10))}\n```")
    parts.append(f"Reasoning so far:\n{_steps(path) or '(none)'}")
    return "\n\n".join(parts)


def t2s_input(statement: str, starter: str, path: list[str]) -> str:
    base = solve_prompt(statement, starter)
    return f"{base}\n\nReasoning:\n{_steps(path)}" if path else base


def examples_from_run(
    run_id: str, events: Iterable[Any], problems: dict[str, dict[str, Any]], *,
    min_pass_rate: float = 0.0, stages: tuple[str, ...] = ("p2t", "t2s"),
) -> list[TrainingExample]:
    """Examples of one run; ``problems`` maps problem id -> Problem dict (statement, starter_code)."""
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
                add(TrainingExample("p2t", p2t_input(statement, starter, path[:-1]), node.thought,
                                    float(node.pass_rate), run_id, node.id, pid, digest))
            for sol in node.solutions:
                code = sol.get("code") or ""
                if code.strip():
                    add(TrainingExample("t2s", t2s_input(statement, starter, path), code_block(code),
                                        float(sol.get("pass_rate", 0.0)), run_id, node.id, pid, digest))
    return list(best.values())
