"""Split a HumanEval/MBPP ``check(candidate)`` program into one test per assertion.

The paper's public/private split needs individual tests, but HumanEval ships one ``check``
function. Each top-level statement of ``check`` that contains an ``assert`` becomes one
test; the statements without one (setup such as ``import math`` or ``inputs = [...]``)
are kept in front of every later test so that each test runs on its own. Module-level
code outside ``check`` (imports, ``METADATA``, helper functions) becomes ``test_setup``.
"""

from __future__ import annotations

import ast

from engine.problems.model import TestCase


def _contains_assert(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def split_check_program(test_program: str, where: str = "") -> tuple[str, list[TestCase]]:
    """Return ``(test_setup, tests)`` for a program that defines ``check(candidate)``."""
    tree = ast.parse(test_program)
    setup_parts: list[str] = []
    check: ast.FunctionDef | None = None
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "check":
            check = stmt
        else:
            setup_parts.append(ast.get_source_segment(test_program, stmt) or ast.unparse(stmt))
    if check is None:
        raise ValueError(f"{where}: test program defines no check(candidate)")
    arg = check.args.args[0].arg if check.args.args else "candidate"
    prelude: list[str] = []
    tests: list[TestCase] = []
    for stmt in check.body:
        src = ast.unparse(stmt)
        if _contains_assert(stmt):
            tests.append(TestCase(input="\n".join([*prelude, src])))
        elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            prelude.append(src)  # setup statement (docstrings dropped)
    if arg != "candidate":
        tests = [TestCase(input=f"{arg} = candidate\n{t.input}") for t in tests]
    return "\n".join(setup_parts), tests
