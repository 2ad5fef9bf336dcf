"""`bdc reproduce --scale tiny`: the whole pipeline in minutes, then resumed for free."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from engine.cli import cli


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
    assert "**apps**" in report and "**codecontests**" in report
    assert "8 training pairs from 8 solved of 8 searched train problems" in report
    for solver in ("w/o tuning", "SFT on all", "merge ties", "Twin-Merging", "DisenLoRA"):
        assert f"| {solver} |" in report
    assert "mbpp: no dataset file found" in report  # Table 3 says what it left out
    assert all((out / f"table{i}.svg").read_text().startswith("<svg") for i in (1, 2, 3))
    state = json.loads((out / "state.json").read_text())
    assert {"data", "cluster", "train/experts", "train/hyper", "table2", "table3"} <= set(state["done"])
    # the test split never overlaps the train split the solvers were trained on
    assert not state["done"]["table2"]["overlap"]["count"]

    again = CliRunner().invoke(cli, ["reproduce", "--scale", "tiny", "--out", str(out)])
    assert again.exit_code == 0 and "table1/" not in again.output and "train/experts" not in again.output
    assert (out / "report.md").read_text() == report
