"""Every prompt bdc sends to a policy, in one place.

Prompts are built from ``Problem.prompt_view()`` only: public tests are shown as examples,
private tests and reference solutions never reach a policy. Each builder returns a litellm
``messages`` list. The wording follows the paper's two stages: problem-to-thought (propose the
next reasoning steps) and thought-to-solution (write the program from a reasoning path), plus
reflection (a different policy explains why an ill node failed) and refinement (its author
rewrites the step from that summary).
"""

from __future__ import annotations

import re

from engine.problems.model import Problem, TestStyle

SYSTEM = (
    "You are an expert competitive programmer and Python engineer. "
    "You reason step by step and write correct, efficient Python 3 code."
)

MAX_TESTS_SHOWN = 5
MAX_TEST_CHARS = 600
# the paper's semantic terminal state: a step that completes the reasoning carries it
# (``SearchConfig.terminal_marker`` recognises it)
TERMINAL_MARKER = "<END>"


def _clip(s: str, n: int = MAX_TEST_CHARS) -> str:
    return s if len(s) <= n else s[:n] + " ...(truncated)"


def format_tests(problem: Problem) -> str:
    """Public tests as the policy sees them (style-specific, clipped)."""
    tests = problem.public_tests[:MAX_TESTS_SHOWN]
    if not tests:
        return ""
    out = []
    for i, t in enumerate(tests, 1):
        if problem.style == TestStyle.STDIO:
            out.append(f"Example {i}:\nInput:\n{_clip(t.input)}\nExpected output:\n{_clip(t.output)}")
        elif problem.style == TestStyle.CALL:
            out.append(f"Example {i}: {problem.fn_name}(*{_clip(t.input)}) == {_clip(t.output)}")
        else:
            out.append(_clip(_named(t.input, problem.entry_point)))
    return "\n".join(out) if problem.style == TestStyle.ASSERT else "\n\n".join(out)


def _named(assertion: str, entry_point: str | None) -> str:
    """HumanEval/MBPP asserts call ``candidate``, a name that exists only inside the grader's
    ``check``; shown as is, models copy ``assert candidate(...)`` into their solutions. The
    policy sees the function's own name instead."""
    return re.sub(r"\bcandidate\b", entry_point, assertion) if entry_point else assertion


def io_contract(problem: Problem) -> str:
    """What the program must look like so the sandbox can run it."""
    if problem.style == TestStyle.STDIO:
        return "Write a complete Python 3 program that reads from standard input and writes to standard output."
    name = problem.entry_point or problem.fn_name
    if name:
        return f"Write a Python 3 function named `{name}` (with any imports and helpers it needs)."
    return "Write the requested Python 3 code."


def describe_problem(problem: Problem) -> str:
    p = problem.prompt_view()
    parts = [f"## Problem\n{p.statement.strip()}"]
    if p.starter_code.strip() and p.starter_code.strip() not in p.statement:
        parts.append(f"## Starter code\n```python\n{p.starter_code.rstrip()}\n```")
    tests = format_tests(p)
    if tests:
        parts.append(f"## Public tests\n{tests}")
    return "\n\n".join(parts)


def describe_path(path: list[str]) -> str:
    if not path:
        return "(no reasoning steps yet)"
    return "\n".join(f"Step {i}: {t.strip()}" for i, t in enumerate(path, 1))


def _msgs(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def propose_thoughts(problem: Problem, path: list[str], k: int) -> list[dict[str, str]]:
    """Problem-to-thought: k alternative next steps, best first, as a JSON list of strings."""
    return _msgs(
        f"{describe_problem(problem)}\n\n## Reasoning so far\n{describe_path(path)}\n\n"
        f"Propose {k} different candidate next reasoning steps towards solving the problem. "
        "Each step is one or two sentences (an insight, an algorithm choice, an edge case to handle); "
        "do not write code. Order them from most to least promising. "
        f"When the reasoning so far plus a step is enough to write the whole program, end that step with {TERMINAL_MARKER}.\n"
        f"Answer with a JSON list of {k} strings and nothing else, in this format:\n"
        "[" + ", ".join(f'"<step {i + 1}>"' for i in range(k)) + "]"
    )


def write_solution(problem: Problem, path: list[str]) -> list[dict[str, str]]:
    """Thought-to-solution: the full program that follows the reasoning path."""
    return _msgs(
        f"{describe_problem(problem)}\n\n## Reasoning\n{describe_path(path)}\n\n"
        f"{io_contract(problem)} Follow the reasoning above. "
        "Reply with the complete code in a single ```python fenced block and no explanation."
    )


def reflect(problem: Problem, path: list[str], code: str, feedback: str, value: float) -> list[dict[str, str]]:
    """Reflection on an ill or failing node: why its last step led to failing code (summary in
    prose); ``feedback`` is the test summary, or RethinkMCTS's block-level execution feedback."""
    return _msgs(
        f"{describe_problem(problem)}\n\n## Reasoning\n{describe_path(path)}\n\n"
        f"## Code written from this reasoning\n```python\n{code.rstrip()}\n```\n\n"
        f"## Test feedback (pass rate {value:.2f})\n{_clip(_named(feedback, problem.entry_point), 2000) or '(no feedback)'}\n\n"
        "The code written from the last reasoning step fails tests (or made the solution worse). "
        "Analyse the code block by block against the feedback and explain in at most five sentences "
        "what is wrong with the last step and what a correct step should consider instead. Do not write code."
    )


def refine(problem: Problem, path: list[str], ill_thought: str, summary: str, value: float) -> list[dict[str, str]]:
    """Refinement: rewrite the ill step using the reflection summary (one replacement step)."""
    return _msgs(
        f"{describe_problem(problem)}\n\n## Reasoning so far\n{describe_path(path)}\n\n"
        f"## A proposed next step that failed (pass rate {value:.2f})\n{ill_thought.strip()}\n\n"
        f"## Reviewer's analysis\n{summary.strip()}\n\n"
        "Write one improved next reasoning step (one or two sentences, no code) that replaces the "
        "failed one and takes the analysis into account. Reply with the step only."
    )


def zero_shot(problem: Problem) -> list[dict[str, str]]:
    """Direct solution without reasoning steps (baseline)."""
    return write_solution(problem, [])
