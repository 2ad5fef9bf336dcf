"""APPS in the Hugging Face ``codeparrot/apps`` row schema.

``input_output`` is a JSON string ``{"inputs": [...], "outputs": [...], "fn_name"?: str}``.
Without ``fn_name`` each input is a stdin text (sometimes a list of lines) and each output
the expected stdout; with it, each input is a list of positional arguments and each output
the expected return value (APPS often wraps it in a one-element list; the sandbox accepts
both, as the APPS grader does).
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import DatasetError
from engine.problems.model import Problem, TestCase, TestStyle, split_public_private
from engine.problems.rows import maybe_json, require

DIFFICULTIES = ("introductory", "interview", "competition")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value) + "\n"
    return str(value)


def parse_apps_row(row: dict[str, Any], where: str) -> Problem:
    require(row, ("problem_id", "question", "input_output"), where)
    io = maybe_json(row["input_output"], where, "input_output")
    if not io or not io.get("inputs"):
        raise DatasetError(f"{where}: problem {row['problem_id']} has no tests in input_output")
    inputs, outputs = io["inputs"], io.get("outputs", [])
    if len(inputs) != len(outputs):
        raise DatasetError(f"{where}: {len(inputs)} test inputs but {len(outputs)} outputs")
    fn_name = io.get("fn_name")
    if fn_name:
        style = TestStyle.CALL
        tests = [TestCase(input=json.dumps(i), output=json.dumps(o)) for i, o in zip(inputs, outputs)]
    else:
        style = TestStyle.STDIO
        tests = [TestCase(input=_text(i), output=_text(o)) for i, o in zip(inputs, outputs)]
    public, private = split_public_private(tests)
    solutions = maybe_json(row.get("solutions"), where, "solutions") or []
    difficulty = row.get("difficulty") or "unknown"
    return Problem(
        id=f"apps/{row['problem_id']}",
        dataset="apps",
        statement=row["question"],
        style=style,
        public_tests=public,
        private_tests=private,
        difficulty=difficulty,
        starter_code=row.get("starter_code") or "",
        fn_name=fn_name,
        solutions=list(solutions),
        meta={"url": row.get("url")} if row.get("url") else {},
    )
