"""PR / AC summaries per difficulty and the paper's Table 2 layout (one row per solver,
a (PR, AC) column pair per difficulty and per dataset's Overall)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# the paper's column order; unknown difficulties follow in sorted order
DIFFICULTY_ORDER = ["introductory", "interview", "competition", "easy", "medium", "hard", "unknown"]
_SHORT = {"introductory": "Intro.", "interview": "Inter.", "competition": "Comp."}


@dataclass
class ProblemResult:
    problem_id: str
    dataset: str
    difficulty: str
    pass_rate: float
    passed: bool
    program: str = ""
    error: str | None = None
    scored: bool = True  # False: no private test apart from public ones, left out of PR/AC
    # passed | failed | unscored | generated (not scored yet) | error (sandbox or LLM failure,
    # ``error`` says why; left out of PR/AC and reported, never counted as a 0)
    status: str = ""
    attempts: int = 1

    def __post_init__(self) -> None:
        if not self.status:
            self.status = (
                "error" if self.error else "unscored" if not self.scored else "passed" if self.passed else "failed"
            )

    @property
    def counts(self) -> bool:
        """Whether this result enters PR/AC: scored, and neither errored nor still unscored."""
        return self.scored and self.status in ("passed", "failed")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProblemResult:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def order_difficulties(ds: Iterable[str]) -> list[str]:
    """Difficulties in the datasets' own order (introductory before interview...), others after."""
    ds = set(ds)
    known = [d for d in DIFFICULTY_ORDER if d in ds]
    return known + sorted(ds - set(known))


def table_columns(
    summaries: dict[str, dict[str, dict[str, Any]]], overall_only: bool = False
) -> list[tuple[str, str, int]]:
    """The (dataset, difficulty | "overall", n) column pairs of an evaluation table: datasets
    in first-seen order, each with its difficulties in order and Overall last. A dataset with
    one difficulty ("all") shows Overall alone: its column pair would repeat Overall's."""
    n: dict[tuple[str, str], int] = {}
    for summ in summaries.values():
        for ds, diffs in summ.items():
            for diff, st in diffs.items():
                n.setdefault((ds, diff), int(st.get("n") or 0))
    cols: list[tuple[str, str, int]] = []
    for ds in dict.fromkeys(ds for ds, _ in n):
        levels = order_difficulties(d for x, d in n if x == ds and d != "overall")
        if (ds, "overall") in n and (overall_only or len(levels) < 2):
            levels = []
        cols += [(ds, d, n[ds, d]) for d in [*levels, "overall"] if (ds, d) in n]
    return cols


def summarize(results: Sequence[ProblemResult]) -> dict[str, dict[str, dict[str, float]]]:
    """{dataset: {difficulty|"overall": {"pr", "ac", "n", "unscored", "errors"}}}, PR and AC in percent.

    Overall is over problems (each problem weighs the same), as in the paper. Unscored
    problems (``scored`` False) are left out of n, PR and AC and counted in ``unscored``;
    problems whose evaluation failed (sandbox or LLM error) are left out and counted in
    ``errors``: a failure is never a silent 0.
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    by_ds: dict[str, list[ProblemResult]] = {}
    for r in results:
        by_ds.setdefault(r.dataset, []).append(r)
    for ds, rs in by_ds.items():
        groups: dict[str, list[ProblemResult]] = {}
        for r in rs:
            groups.setdefault(r.difficulty or "unknown", []).append(r)
        table = {}
        for diff in order_difficulties(groups):
            table[diff] = _stats(groups[diff])
        table["overall"] = _stats(rs)
        out[ds] = table
    return out


def _stats(rs: Sequence[ProblemResult]) -> dict[str, float]:
    scored = [r for r in rs if r.counts]
    n = len(scored)
    return {
        "pr": 100.0 * sum(r.pass_rate for r in scored) / n if n else 0.0,
        "ac": 100.0 * sum(1 for r in scored if r.passed) / n if n else 0.0,
        "n": n,
        "unscored": sum(1 for r in rs if r.status == "unscored"),
        "errors": sum(1 for r in rs if r.status in ("error", "generated")),
    }


def unscored_note(summaries: dict[str, dict[str, dict[str, dict[str, float]]]]) -> str:
    """One line naming how many problems per dataset were left out of PR/AC, or ""."""
    counts: dict[str, int] = {}
    for summ in summaries.values():
        for ds, diffs in summ.items():
            counts[ds] = max(counts.get(ds, 0), int(diffs.get("overall", {}).get("unscored", 0)))
    errors: dict[str, int] = {}
    for summ in summaries.values():
        for ds, diffs in summ.items():
            errors[ds] = errors.get(ds, 0) + int(diffs.get("overall", {}).get("errors", 0))
    parts = [f"{ds}: {k}" for ds, k in counts.items() if k]
    notes = []
    if parts:
        notes.append("left out of PR/AC (no private tests apart from the public ones): " + ", ".join(parts))
    failed = [f"{ds}: {k}" for ds, k in errors.items() if k]
    if failed:
        notes.append(
            "NOT EVALUATED (sandbox/LLM errors, left out of PR/AC; rerun with --retry-errors N): " + ", ".join(failed)
        )
    return "\n".join(notes)


def table2(summaries: dict[str, dict[str, dict[str, dict[str, float]]]], title: str = "PR / AC") -> Any:
    """A Rich table: rows = solvers, column pairs = dataset x difficulty (+ Overall)."""
    from rich.table import Table

    ordered = table_columns(summaries)
    t = Table(title=title)
    t.add_column("Solver", style="bold")
    for ds, diff, n in ordered:
        label = f"Overall ({n})" if diff == "overall" else f"{_SHORT.get(diff, diff.capitalize())} ({n})"
        t.add_column(f"{ds}\n{label}\nPR", justify="right")
        t.add_column(f"{ds}\n{label}\nAC", justify="right")
    for solver, summ in summaries.items():
        row = [solver]
        for ds, diff, _ in ordered:
            st = summ.get(ds, {}).get(diff)
            row += [f"{st['pr']:.2f}", f"{st['ac']:.2f}"] if st else ["-", "-"]
        t.add_row(*row)
    note = unscored_note(summaries)
    if note:
        t.caption = note
    return t
