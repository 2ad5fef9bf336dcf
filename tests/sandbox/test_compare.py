from __future__ import annotations

import json

from engine.sandbox import ExecutionResult, SandboxLimits, TestResult, Verdict
from engine.sandbox.compare import compare_stdout, compare_values


def test_whitespace_and_line_endings():
    assert compare_stdout("1 2\r\n3  \n\n", "1 2\n3")
    assert compare_stdout("1\n2\n", "1 2")  # token-wise
    assert not compare_stdout("1 2", "1 2 3")
    assert not compare_stdout("YES", "yes")  # case-sensitive
    assert compare_stdout("", "")
    assert compare_stdout("\n", "")


def test_numbers():
    assert compare_stdout("0.3000001", "0.3")
    assert compare_stdout("1000000.5", "1000000.0000")  # relative 1e-5
    assert not compare_stdout("0.31", "0.3")
    assert compare_stdout("7", "7.0") and compare_stdout("+7", "7")
    assert not compare_stdout("12345678901234567890", "12345678901234567891")  # big ints exact
    assert not compare_stdout("nan", "1.0") and not compare_stdout("inf", "1e400")


def test_values():
    assert compare_values((1, [2, 3]), [1, [2, 3]])
    assert compare_values({1: "a"}, {"1": "a"})
    assert compare_values(0.1 + 0.2, 0.3)
    assert compare_values(5, [5])  # APPS' extra list
    assert not compare_values(True, 1) and not compare_values(1, True)
    assert not compare_values([1, 2], [2, 1])


def test_result_roundtrip():
    r = ExecutionResult([TestResult(Verdict.PASSED, 0.01, 100), TestResult(Verdict.TIME_LIMIT, error_type="Timeout")])
    d = json.loads(json.dumps(r.to_dict()))
    back = ExecutionResult.from_dict(d)
    assert back.verdicts == r.verdicts and back.pass_rate == 0.5 and not back.passed
    assert ExecutionResult([]).pass_rate == 0 and not ExecutionResult([]).passed
    assert SandboxLimits(timeout_s=2).to_dict()["cpu_s"] == 3.0
