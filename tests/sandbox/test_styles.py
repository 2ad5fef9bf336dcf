"""The three test styles, verdicts for bad input, and the result types."""

from __future__ import annotations

import pytest

from engine.sandbox import Verdict

from .conftest import T, assert_problem, call_problem, stdio_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_stdio_verdicts_and_tolerant_comparison(sb):
    prog = "n = int(input())\nprint(n * 2, '  ')\nprint(0.1 + 0.2)\n\n"
    r = await sb.run(prog, stdio_problem(), [T("2\n", "4\r\n0.3\n\n\n"), T("3", "5\n0.3")])
    assert r.verdicts == [Verdict.PASSED, Verdict.WRONG_ANSWER]
    assert r.pass_rate == 0.5 and not r.passed
    wa = r.results[1]
    assert wa.expected.startswith("5") and wa.got.startswith("6") and wa.input == "3"
    assert "1/2 tests passed" in r.summary and "wrong answer" in r.summary
    assert all(x.time_s > 0 and x.peak_memory_kb > 0 for x in r.results)


async def test_call_style(sb):
    prog = "def f(a, b):\n    return (a + b, [a])\n"
    r = await sb.run(prog, call_problem("f"), [T("[1, 2]", "[3, [1]]"), T("[1, 2]", "[4, [1]]")])
    assert r.verdicts == [Verdict.PASSED, Verdict.WRONG_ANSWER]
    # APPS: LeetCode-style class, and expected values wrapped in an extra list
    prog = "class Solution:\n    def twice(self, x):\n        return x * 2\n"
    r = await sb.run(prog, call_problem("twice"), [T("[4]", "[8]"), T("[1.5]", "3.0000000000001")])
    assert r.passed, r.summary
    r = await sb.run("def f():\n    return {1, 2}\n", call_problem("f"), [T("[]", "[1, 2]")])
    assert r.verdicts == [Verdict.WRONG_ANSWER]  # a set is not a JSON list
    r = await sb.run("def f():\n    return True\n", call_problem("f"), [T("[]", "1")])
    assert r.verdicts == [Verdict.WRONG_ANSWER]
    r = await sb.run("def g():\n    return 1\n", call_problem("f"), [T("[]", "1")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "NameError"


async def test_assert_style_with_setup(sb):
    prob = assert_problem("add", setup="import math\nEPS = 1e-9\n")
    prog = "def add(a, b):\n    return a + b\n"
    tests = [
        T("assert candidate(1, 2) == 3"),
        T("assert abs(candidate(0.1, 0.2) - 0.3) < EPS"),
        T("assert add(2, 2) == 5"),
        T("assert candidate(1, None)"),
    ]
    r = await sb.run(prog, prob, tests)
    assert r.verdicts == [Verdict.PASSED, Verdict.PASSED, Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR]
    assert r.results[2].error_type == "AssertionError" and "add(2, 2)" in r.results[2].expected
    assert r.results[3].error_type == "TypeError" and "TypeError" in r.results[3].stderr_excerpt


async def test_syntax_error_short_circuits(sb):
    r = await sb.run("def f(:\n    pass\n", assert_problem("f"), [T("assert candidate()")] * 4)
    assert r.verdicts == [Verdict.SYNTAX_ERROR] * 4
    assert "SyntaxError" in r.results[0].stderr_excerpt
    r = await sb.run("print('a\x00')", stdio_problem(), [T("", "a")])
    assert r.verdicts == [Verdict.SYNTAX_ERROR]


async def test_bad_input_gets_clear_verdicts(sb):
    r = await sb.run("", stdio_problem(), [T("", "1")])
    assert r.verdicts == [Verdict.WRONG_ANSWER]
    r = await sb.run("", assert_problem("f"), [T("assert candidate() == 1")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "NameError"
    r = await sb.run("print()", stdio_problem(), [T("", "")])  # test with no expected output
    assert r.passed
    r = await sb.run("def f():\n    return 1\n", call_problem("f"), [T("[]", "")])
    assert r.verdicts == [Verdict.WRONG_ANSWER] and r.results[0].error_type == "BadExpectedOutput"
    r = await sb.run("import sys\nsys.stdout.buffer.write(b'\\xff\\xfe 1')\n", stdio_problem(), [T("", "1")])
    assert r.verdicts == [Verdict.WRONG_ANSWER]  # non-UTF-8 output
    r = await sb.run(
        "print('\\n'.join(['123456789'] * 300000))", stdio_problem(), [T("", "\n".join(["123456789"] * 300000))]
    )
    assert r.passed  # 3 MB of output, compared fine
    assert (await sb.run("print(1)", stdio_problem(), [])).results == []


async def test_run_many_keeps_input_order(sb):
    jobs = [(f"print({i})", stdio_problem(), [T("", str(i))]) for i in range(9)]
    jobs[4] = ("print('no')", stdio_problem(), [T("", "4")])
    res = await sb.run_many(jobs)
    assert [r.passed for r in res] == [i != 4 for i in range(9)]


async def test_info_reports_protections(sb):
    info = sb.info()
    for key in ("user_switch", "network_namespace", "pid_namespace", "rlimits", "private_tmp"):
        assert key in info
    if info["mode"] == "full":
        assert info["user_switch"] and info["network_namespace"] and info["pid_namespace"]


async def test_common_contest_patterns_work(sb):
    # the usual "deep recursion in a big-stack thread" trick: threads are allowed (RLIMIT_NPROC > 1)
    prog = (
        "import sys, threading\nsys.setrecursionlimit(10**6)\nthreading.stack_size(2**26)\n"
        "def f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\n"
        "def main():\n    print(f(100000))\nt = threading.Thread(target=main)\nt.start()\nt.join()\n"
    )
    r = await sb.run(prog, stdio_problem(), [T("", "100000")])
    assert r.passed, r.summary
    # third-party packages of the interpreter are importable by the unprivileged user
    pytest.importorskip("numpy")
    r = await sb.run("import numpy as np\nprint(np.arange(int(input())).sum())", stdio_problem(), [T("5", "10")])
    assert r.passed, r.summary
