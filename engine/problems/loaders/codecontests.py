"""CodeContests in the ``deepmind/code_contests`` row schema.

Public tests guide the search; private tests score it (generated tests are used for
scoring only when a row has no private tests). A row without public tests takes the first
half of its private ones as public; one with a single test then has nothing left to score
on and is not ``scorable``. The paper splits by difficulty into easy and
hard, hard being Codeforces index E and above: ``difficulty >= 11`` in the dataset's enum.
Only Python 3 reference solutions (language 3) are kept: they are what the sandbox runs.
"""

from __future__ import annotations

from typing import Any

from engine.errors import DatasetError
from engine.problems.model import Problem, TestCase, TestStyle, split_public_private
from engine.problems.rows import maybe_json, require

HARD_FROM = 11
PYTHON3 = 3
DIFFICULTIES = ("easy", "hard")


def _tests(value: Any, where: str, field: str) -> list[TestCase]:
    value = maybe_json(value, where, field) or {}
    inputs, outputs = value.get("input", []) or [], value.get("output", []) or []
    if len(inputs) != len(outputs):
        raise DatasetError(f"{where}: {field} has {len(inputs)} inputs but {len(outputs)} outputs")
    return [TestCase(input=i, output=o) for i, o in zip(inputs, outputs)]


def difficulty_label(level: int) -> str:
    return "hard" if level >= HARD_FROM else "easy"


def parse_codecontests_row(row: dict[str, Any], where: str) -> Problem:
    require(row, ("name", "description"), where)
    public = _tests(row.get("public_tests"), where, "public_tests")
    private = _tests(row.get("private_tests"), where, "private_tests")
    if not private:
        private = _tests(row.get("generated_tests"), where, "generated_tests")
    if not public and private:  # no public set: the paper's first-half rule (one test: unscorable)
        public, private = split_public_private(private)
    sols = maybe_json(row.get("solutions"), where, "solutions") or {}
    solutions = [s for lang, s in zip(sols.get("language", []), sols.get("solution", [])) if lang == PYTHON3]
    level = int(row.get("difficulty") or 0)
    tl = maybe_json(row.get("time_limit"), where, "time_limit") or {}
    meta = {
        "cf_difficulty": level,
        "time_limit_s": (tl.get("seconds") or 0) + (tl.get("nanos") or 0) / 1e9 or None,
        "memory_limit_bytes": int(row["memory_limit_bytes"]) if row.get("memory_limit_bytes") else None,
    }
    return Problem(
        id=str(row["name"]),
        dataset="codecontests",
        statement=row["description"],
        style=TestStyle.STDIO,
        public_tests=public,
        private_tests=private,
        difficulty=difficulty_label(level),
        solutions=solutions,
        meta=meta,
    )
