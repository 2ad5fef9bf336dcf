"""Training problems never score an evaluation.

``bdc eval`` looks up which problems the artifacts it loads were trained on
(``engine.training.provenance``) and refuses a dataset that shares any with them, unless the
user says ``--allow-overlap``; the result (and the table) then says how many were shared.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from engine.errors import ConfigError
from engine.training.provenance import trained_problems


def artifact_paths(solver_specs: Sequence[str], artifacts: str | None) -> list[str]:
    """The folders whose training records apply: the artifacts folder when a trained solver
    comes from it, and every ``adapter:<path>``."""
    paths = [spec.split(":", 1)[1] for spec in solver_specs if spec.startswith("adapter:")]
    if artifacts and any(spec != "base" and not spec.startswith("adapter:") for spec in solver_specs):
        paths.append(artifacts)
    return paths


def overlapping(problems: Iterable[Any], trained: dict[str, str]) -> list[str]:
    """Ids of ``problems`` that were trained on: the same statement digest, or the same id
    when the record has no digest for it. A reused id with another statement (APPS numbers
    its train and test splits alike) is a different problem."""
    digests = {v for v in trained.values() if v}
    return [p.id for p in problems if p.digest in digests or (p.id in trained and not trained[p.id])]


def check_separation(
    problems: Sequence[Any], solver_specs: Sequence[str], artifacts: str | None, *, allow_overlap: bool
) -> dict[str, Any]:
    """``{"count", "ids", "allowed"}`` of evaluation problems the solvers were trained on;
    raises ConfigError when there are any and ``allow_overlap`` is not set."""
    trained = trained_problems(artifact_paths(solver_specs, artifacts))
    ids = overlapping(problems, trained) if trained else []
    if ids and not allow_overlap:
        shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
        raise ConfigError(
            f"{len(ids)} of the {len(problems)} evaluation problems were in the training data ({shown}); "
            "evaluate on held-out problems, or pass --allow-overlap to score them anyway (the table says so)"
        )
    return {"count": len(ids), "ids": ids, "allowed": bool(ids)}
