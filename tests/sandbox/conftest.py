from __future__ import annotations

import pytest_asyncio

from engine.problems.model import Problem, TestCase, TestStyle
from engine.sandbox import Sandbox, SandboxLimits


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sb():
    """One sandbox (2 workers) per test module: starting workers costs ~0.3 s."""
    async with Sandbox(limits=SandboxLimits(timeout_s=2.0), workers=2) as s:
        yield s


def stdio_problem() -> Problem:
    return Problem(id="t/stdio", dataset="test", statement="", style=TestStyle.STDIO, public_tests=[], private_tests=[])


def call_problem(fn_name: str = "f") -> Problem:
    return Problem(
        id="t/call",
        dataset="test",
        statement="",
        style=TestStyle.CALL,
        public_tests=[],
        private_tests=[],
        fn_name=fn_name,
    )


def assert_problem(entry_point: str = "f", setup: str = "") -> Problem:
    return Problem(
        id="t/assert",
        dataset="test",
        statement="",
        style=TestStyle.ASSERT,
        public_tests=[],
        private_tests=[],
        entry_point=entry_point,
        test_setup=setup,
    )


T = TestCase
