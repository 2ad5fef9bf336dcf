"""Training problems never score an evaluation: artifacts record them, `bdc eval` refuses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.errors import ConfigError
from engine.evaluation.separation import artifact_paths, check_separation
from engine.jobs.kinds import training_examples
from engine.problems import load_dataset
from engine.problems.model import Problem, TestStyle
from engine.training.examples import TrainingExample
from engine.training.provenance import TRAINED_ON, record_trained_problems, trained_problems


def _p(pid: str, statement: str) -> Problem:
    return Problem(
        id=pid, dataset="apps", statement=statement, style=TestStyle.STDIO, public_tests=[], private_tests=[]
    )


def test_training_records_its_problems_in_the_artifact_folder(tmp_path: Path) -> None:
    art = tmp_path / "art"
    examples = training_examples("canonical:humaneval", art)
    rec = json.loads((art / TRAINED_ON).read_text())
    assert len(rec["problems"]) == 164 and rec["sources"] == ["canonical:humaneval"]
    he0 = load_dataset("humaneval")[0]
    assert rec["problems"]["HumanEval/0"] == he0.digest
    assert {e.problem_id for e in examples} == set(rec["problems"])
    # a second training into the same folder adds to the record
    record_trained_problems(
        art, [TrainingExample("p2t", "x", "y", problem_id="apps/7", problem_digest="d")], "run.jsonl"
    )
    rec = json.loads((art / TRAINED_ON).read_text())
    assert len(rec["problems"]) == 165 and rec["sources"] == ["canonical:humaneval", "run.jsonl"]
    # a solver folder inside the tree finds the record of its root
    nested = art / "experts" / "expert_0"
    nested.mkdir(parents=True)
    assert trained_problems([nested])["apps/7"] == "d"


def test_overlap_is_refused_unless_allowed(tmp_path: Path) -> None:
    record_trained_problems(
        tmp_path,
        [
            TrainingExample("t2s", "x", "y", problem_id="apps/1", problem_digest=_p("", "sum a b").digest),
            TrainingExample("t2s", "x", "y", problem_id="old/3"),
        ],
        "data",
    )
    problems = [_p("apps/1", "sum  a\nb"), _p("apps/2", "Other"), _p("apps/9", "sum a b"), _p("old/3", "?")]
    with pytest.raises(ConfigError, match="3 of the 4 evaluation problems were in the training data"):
        check_separation(problems, ["sft"], str(tmp_path), allow_overlap=False)
    got = check_separation(problems, ["sft"], str(tmp_path), allow_overlap=True)
    # same statement under another id counts; an id without digest counts by id
    assert got == {"count": 3, "ids": ["apps/1", "apps/9", "old/3"], "allowed": True}
    # APPS numbers train and test alike: the same id with another statement is another problem
    assert (
        check_separation([_p("apps/1", "A different task")], ["sft"], str(tmp_path), allow_overlap=False)["count"] == 0
    )
    # the untuned base is not checked against the artifacts
    assert artifact_paths(["base"], str(tmp_path)) == []
    assert artifact_paths(["base", "adapter:/x/y", "merge:ties"], "art") == ["/x/y", "art"]


def test_cli_eval_refuses_trained_problems_and_says_when_allowed(tmp_path: Path, monkeypatch) -> None:
    from engine.training.tiny import make_tiny_llama
    from tests.training.conftest import make_random_adapters

    monkeypatch.setenv("BDC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BDC_DB", str(tmp_path / "home" / "bdc.db"))
    base = str(make_tiny_llama(tmp_path / "tiny", hidden=32, layers=2, heads=2))
    art = tmp_path / "art"
    (adapter,) = make_random_adapters(base, art / "experts", 1)
    training_examples("canonical:humaneval", art)
    args = [
        "eval",
        "--base",
        base,
        "--solver",
        f"adapter:{adapter}",
        "--dataset",
        "humaneval",
        "--limit",
        "2",
        "--max-new-tokens",
        "4",
    ]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code != 0
    assert "2 of the 2 evaluation problems were in the training data" in str(refused.exception) + refused.output
    allowed = CliRunner().invoke(cli, [*args, "--allow-overlap"])
    assert allowed.exit_code == 0, allowed.output
    assert "--allow-overlap: the solvers were trained on 2 of these problems" in allowed.output
