"""`bdc reproduce --scale tiny`: the whole pipeline in minutes, then resumed for free."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.reproduce.report import write_report
from engine.store import Store


def _datasets(folder: Path) -> Path:
    """Small synthetic APPS and CodeContests files (stdin programs with reference solutions)."""
    folder.mkdir(parents=True)
    apps = []
    for i, level in enumerate(["introductory", "interview", "competition"]):
        apps.append(
            {
                "problem_id": i,
                "question": f"Print the sum of two integers plus {i}.",
                "difficulty": level,
                "solutions": json.dumps([f"a, b = map(int, input().split())\nprint(a + b + {i})"]),
                "input_output": json.dumps(
                    {"inputs": ["1 2\n", "3 4\n", "5 6\n"], "outputs": [f"{3 + i}\n", f"{7 + i}\n", f"{11 + i}\n"]}
                ),
            }
        )
    cc = []
    for i, level in enumerate([7, 12]):
        cc.append(
            {
                "name": f"{i}_A. Double",
                "description": "Print twice the integer.",
                "difficulty": level,
                "public_tests": {"input": ["2\n"], "output": ["4\n"]},
                "private_tests": {"input": ["5\n", "0\n"], "output": ["10\n", "0\n"]},
                "solutions": {"language": [3], "solution": ["print(2 * int(input()))"]},
            }
        )
    (folder / "apps.jsonl").write_text("\n".join(json.dumps(r) for r in apps) + "\n")
    (folder / "codecontests.jsonl").write_text("\n".join(json.dumps(r) for r in cc) + "\n")
    return folder


def test_reproduce_tiny_end_to_end_and_resume(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BDC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BDC_DATASETS", str(_datasets(tmp_path / "datasets")))
    out = tmp_path / "rep"
    res = CliRunner().invoke(cli, ["reproduce", "--scale", "tiny", "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    report = (out / "report.md").read_text()
    # Table 1: per-model baseline rows and the multi-agent MC-Tree-Of-Agents row, both datasets
    for row in (
        "| zero-shot (good) | 100.00 | 100.00 |",
        "| zero-shot (bad) | 0.00 | 0.00 |",
        "| rethinkmcts (good) |",
        "| mcts (good, bad) |",
    ):
        assert row in report, row
    assert "**apps** (PR / AC in %; problems per difficulty: introductory 1, interview 1, competition 1)" in report
    assert "**codecontests** (PR / AC in %; problems per difficulty: easy 1, hard 1)" in report
    # a one-difficulty dataset gets one column pair, with its n
    assert "| Solver | humaneval overall (n=4) PR | humaneval overall AC |\n" in report
    assert "8 training pairs (8 t2s) from 8 solved of 8 searched train problems" in report  # solved at the root
    for solver in ("w/o tuning", "SFT on all", "merge ties", "Twin-Merging", "DisenLoRA"):
        assert f"| {solver} |" in report
    assert "mbpp: no dataset file found" in report  # Table 3 says what it left out
    assert all((out / f"table{i}.svg").read_text().startswith("<svg") for i in (1, 2, 3))
    state = json.loads((out / "state.json").read_text())
    assert {"data", "cluster", "train/experts", "train/hyper", "table2", "table3"} <= set(state["done"])
    # the test split never overlaps the train split the solvers were trained on
    assert not state["done"]["table2"]["overlap"]["count"]
    # Table 3 reuses Table 2's test-split columns: with no other dataset found, no second eval
    assert "table3" not in state["jobs"] and "| humaneval overall (n=4) PR |" in report.split("## Table 3")[1]
    assert "Status: complete" in report
    timings = report.split("## Time per step")[1]
    assert "| data/search |" in timings and "| train/experts |" in timings and "| **total** |" in timings
    # the cluster / train / eval steps are jobs of the run's store (what `bdc jobs` and the TUI show)
    jobs, losses = asyncio.run(_jobs_and_losses(out / "bdc.db", state["jobs"]["train/experts"]))
    assert {j.id for j in jobs} == set(state["jobs"].values())
    assert all(j.status == "finished" for j in jobs) and {j.kind for j in jobs} == {"cluster", "train", "eval"}
    assert losses, "the experts' training losses are stored as the job's metrics"

    again = CliRunner().invoke(cli, ["reproduce", "--scale", "tiny", "--out", str(out)])
    assert again.exit_code == 0 and "table1/" not in again.output and "train/experts" not in again.output
    assert (out / "report.md").read_text() == report
    (out / "report.md").unlink()
    only = CliRunner().invoke(cli, ["reproduce", "--scale", "tiny", "--out", str(out), "--report-only"])
    assert only.exit_code == 0 and "table1/" not in only.output and (out / "report.md").read_text() == report


async def _jobs_and_losses(db: Path, train_job: str) -> tuple[list, list]:
    store = await Store.open(db)
    try:
        return await store.jobs(), await store.metrics(train_job, "loss")
    finally:
        await store.close()


def test_report_of_an_unfinished_reproduction_says_what_is_partial(tmp_path: Path) -> None:
    row = {
        "label": "zero-shot (a)",
        "metrics": {
            "by_difficulty": {"easy": {"n": 2, "pr": 1.0, "ac": 0.5}},
            "overall": {"pr": 1.0, "ac": 0.5, "calls": 3, "cost": 0.0},
        },
    }
    results = {
        "table1": {"codecontests": [row]},
        "table1_expected": {"apps": 13, "codecontests": 13},
        "table2": None,
        "table3": None,
        "data": None,
        "seconds": {"table1/codecontests/zero-shot (a)": 90.0},
        "complete": False,
    }
    report = write_report(tmp_path, results, "small", ["a"], "base").read_text()
    assert "partial: the reproduction has not finished" in report
    assert "Table 1: System 2 knowledge exploration (partial: 1 of 26 rows finished)" in report
    assert "| zero-shot (a) | 100.00 | 50.00 | 100.00 | 50.00 | 3 | 0.0000 |" in report
    assert "**codecontests** (PR / AC in %; problems per difficulty: easy 2)" in report
    assert report.split("## Table 2")[1].split("##")[0].strip().endswith("_Not run yet._")
    assert "| table1/codecontests/zero-shot (a) | 1.5 |" in report
    assert not (tmp_path / "table2.svg").exists()


def test_a_failed_job_step_stops_with_one_line_and_reruns_the_same_stored_job(tmp_path: Path) -> None:
    from engine.errors import ConfigError
    from engine.reproduce.pipeline import Reproduction
    from engine.reproduce.scales import SCALES

    rep = Reproduction(tmp_path / "rep", SCALES["tiny"], [], "base", say=lambda m: None)
    config = {"data": str(tmp_path / "missing.jsonl"), "k": 2, "out": str(tmp_path / "art"), "encoder": "minilm"}
    with pytest.raises(ConfigError, match=r"^cluster: job j-\S+ failed: .*its log: .*logs/j-\S+\.log\)$"):
        rep.job("cluster", "cluster", config)
    first = rep.state.data["jobs"]["cluster"]
    assert rep.state.done("cluster") is None and "cluster" not in rep.state.data["seconds"]
    with pytest.raises(ConfigError):
        Reproduction(tmp_path / "rep", SCALES["tiny"], [], "base", say=lambda m: None).job("cluster", "cluster", config)
    jobs, _ = asyncio.run(_jobs_and_losses(tmp_path / "rep" / "bdc.db", first))
    assert [(j.id, j.status) for j in jobs] == [(first, "failed")]  # run again, not a second job
