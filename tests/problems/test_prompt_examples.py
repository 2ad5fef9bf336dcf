"""HumanEval's public tests are the examples its prompts show, in every form they take."""

from __future__ import annotations

from engine.problems import load_dataset
from engine.problems.examples import prompt_examples
from engine.sandbox import Sandbox, SandboxLimits


def _inputs(prompt: str, entry: str = "f") -> list[str]:
    return [t.input for t in prompt_examples(prompt, entry)]


def test_doctest_examples_with_results_and_continuations() -> None:
    prompt = (
        'def f(xs, y):\n    """Doc.\n    >>> f([1, 2],\n    ...   3)\n    [1, 2, 3]\n'
        '    >>> f([], 1)  # empty\n    [1]\n    >>> print(\'x\')\n    x\n    """\n'
    )
    assert _inputs(prompt) == ["assert (f([1, 2], 3)) == ([1, 2, 3])", "assert (f([], 1)) == ([1])"]


def test_inline_forms_and_float_tolerance() -> None:
    prompt = (
        'def f(s):\n    """\n    f("ab") == 2\n    f("a") ➞ 1\n    f("") => 0\n    f("x") ==> true\n'
        '    f(\'y\') should return False.\n    f(1.5) -> 0.5\n    """\n'
    )
    assert _inputs(prompt) == [
        "assert (f('ab')) == (2)",
        "assert (f('a')) == (1)",
        "assert (f('')) == (0)",
        "assert (f('x')) == (True)",
        "assert (f('y')) == (False)",
        "assert abs((f(1.5)) - (0.5)) <= 1e-06",
    ]


def test_prose_and_undefined_names_give_no_tests() -> None:
    assert _inputs('def f(n):\n    """For n = 3 the output should be 6.\n    f(5) -> 19 - 5 - 6 = 8\n    """\n') == []
    assert _inputs('def f(s):\n    """\n    f(a) => False\n    """\n') == []  # `a` means the string, not a name
    assert _inputs('def f():\n    """No examples here."""\n') == []


async def test_canonical_solutions_pass_their_prompts_examples_but_for_known_errata() -> None:
    """Runs every HumanEval canonical solution on its public tests in the sandbox; the only
    failures are the three prompts whose examples contradict their own reference."""
    problems = [p for p in load_dataset("humaneval") if p.public_tests]
    assert len(problems) >= 120
    async with Sandbox(limits=SandboxLimits(timeout_s=5.0), workers=2) as sb:
        results = await sb.run_many([(p.solutions[0], p, p.public_tests) for p in problems])
    failing = sorted(p.id for p, r in zip(problems, results) if not r.passed)
    assert set(failing) <= {"HumanEval/47", "HumanEval/116", "HumanEval/148"}, failing
