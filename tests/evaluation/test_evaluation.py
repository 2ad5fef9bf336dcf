from __future__ import annotations

import os

import pytest

from engine.evaluation.codegen import build_program, extract_code
from engine.evaluation.tables import ProblemResult, summarize, table2

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_extract_code_prefers_fenced_block():
    reply = "Here you go:\n```python\ndef f():\n    return 1\n```\nDone."
    assert extract_code(reply) == "def f():\n    return 1\n"
    assert extract_code("    return 1\n") == "    return 1\n"


class _P:
    entry_point = "add"
    starter_code = 'from typing import List\n\n\ndef add(a: int, b: int) -> int:\n    """sum"""\n'


def test_build_program_whole_function_or_completion():
    whole = build_program(_P, "```python\ndef add(a, b):\n    return a + b\n```")
    assert whole.startswith("from typing import List\n") and "return a + b" in whole
    body = build_program(_P, "    return a + b\n")
    assert body == _P.starter_code + "    return a + b\n"
    # a completion that runs its own examples after the body: the examples go, the body stays
    demo = build_program(_P, "    return a + b\n\nprint(add(1, 2))\nassert add(1, 1) == 2\n")
    assert demo == _P.starter_code + "    return a + b\n"


def test_summary_and_table2_layout():
    rs = [
        ProblemResult("a", "apps", "introductory", 1.0, True),
        ProblemResult("b", "apps", "introductory", 0.5, False),
        ProblemResult("c", "apps", "interview", 0.0, False),
        ProblemResult("d", "codecontests", "easy", 1.0, True),
    ]
    s = summarize(rs)
    assert s["apps"]["introductory"] == {"pr": 75.0, "ac": 50.0, "n": 2, "unscored": 0, "errors": 0}
    assert s["apps"]["overall"]["pr"] == pytest.approx(50.0)
    assert s["apps"]["overall"]["ac"] == pytest.approx(100 / 3)
    assert list(s["apps"]) == ["introductory", "interview", "overall"]
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(table2({"w/o tuning": s, "DisenLoRA": s}))
    text = console.export_text()
    assert "Intro. (2)" in text and "Overall (3)" in text and "DisenLoRA" in text and "75.00" in text
    header = text.splitlines()[2]
    # codecontests has one difficulty: its column pair would repeat Overall's, so only Overall shows
    assert header.count("apps") == 6 and header.count("codecontests") == 2


def _humaneval(n: int):
    problems_mod = pytest.importorskip("engine.problems")
    try:
        return problems_mod.load_dataset("humaneval")[:n]
    except Exception as e:  # dataset not available
        pytest.skip(f"humaneval not loadable: {e}")


class _ReplySolver:
    """Returns fixed replies per problem: checks scoring, not generation."""

    def __init__(self, replies):
        self.name = "fixed"
        self.replies = replies

    def generate(self, inputs):
        return [self.replies.pop(0) for _ in inputs]


async def test_evaluate_scores_through_the_sandbox():
    pytest.importorskip("engine.sandbox")
    from engine.evaluation.runner import evaluate

    problems = _humaneval(3)
    good = [f"```python\n{p.solutions[0]}\n```" for p in problems]
    bad = ["```python\ndef nothing():\n    pass\n```"] * 3
    events = []
    res = await evaluate(_ReplySolver(good), problems, progress=events.append, batch_size=2)
    assert [r.problem_id for r in res] == [p.id for p in problems]
    assert all(r.passed and r.pass_rate == 1.0 for r in res), [r.error for r in res]
    assert [e["step"] for e in events] == [1, 2, 3]
    res_bad = await evaluate(_ReplySolver(bad), problems)
    assert all(not r.passed and r.pass_rate == 0.0 for r in res_bad)
    s = summarize(res)
    assert s["humaneval"]["overall"] == {"pr": 100.0, "ac": 100.0, "n": 3, "unscored": 0, "errors": 0}


async def test_tiny_model_solver_runs_end_to_end(tmp_path):
    pytest.importorskip("engine.sandbox")
    from engine.evaluation.runner import evaluate
    from engine.evaluation.solvers import HFSolver
    from engine.training.tiny import make_tiny_llama

    base = str(make_tiny_llama(tmp_path / "tiny", hidden=32, layers=2, heads=2))
    solver = HFSolver(base, max_new_tokens=8)
    res = await evaluate(solver, _humaneval(2), batch_size=2)
    assert len(res) == 2 and all(0.0 <= r.pass_rate <= 1.0 for r in res)
    assert not any(r.passed for r in res)  # a random model does not solve HumanEval
