"""Training examples: the JSONL contract between `bdc export` and DisenLoRA.

One JSON object per line::

    {"stage": "p2t"|"t2s", "input": str, "output": str, "pass_rate": float,
     "run_id": str, "node_id": str, "problem_id": str, "problem_digest": str}

``problem_id`` and ``problem_digest`` (the statement's fingerprint) say which problem an
example comes from, so a trained artifact can record what it must not be evaluated on.

``p2t`` pairs map a problem to a thought, ``t2s`` pairs map problem + thought to a solution
(paper 4.2.1). Until searched trees exist, :func:`canonical_examples` builds ``t2s`` pairs
with an empty thought from the HumanEval/MBPP canonical solutions, so the whole training
pipeline can be exercised on real code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.errors import DatasetError

STAGES = ("p2t", "t2s")


@dataclass(frozen=True)
class TrainingExample:
    stage: str
    input: str
    output: str
    pass_rate: float = 1.0
    run_id: str = ""
    node_id: str = ""
    problem_id: str = ""
    problem_digest: str = ""

    @property
    def text(self) -> str:
        """The pair as one string: what eq. 12 embeds (Phi(<X_i, y_i>))."""
        return f"{self.input}\n{self.output}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parse(line: str, where: str) -> TrainingExample:
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(d, dict):
        raise DatasetError(f"{where}: expected a JSON object")
    missing = [k for k in ("stage", "input", "output") if k not in d]
    if missing:
        raise DatasetError(f"{where}: missing field(s) {', '.join(missing)}")
    if d["stage"] not in STAGES:
        raise DatasetError(f"{where}: stage must be one of {STAGES}, got {d['stage']!r}")
    if not isinstance(d["input"], str) or not isinstance(d["output"], str):
        raise DatasetError(f"{where}: input and output must be strings")
    try:
        pr = float(d.get("pass_rate", 1.0))
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: pass_rate must be a number") from None
    return TrainingExample(
        stage=d["stage"],
        input=d["input"],
        output=d["output"],
        pass_rate=pr,
        run_id=str(d.get("run_id", "")),
        node_id=str(d.get("node_id", "")),
        problem_id=str(d.get("problem_id", "")),
        problem_digest=str(d.get("problem_digest", "")),
    )


def load_examples(path: str | Path, *, min_pass_rate: float = 0.0) -> list[TrainingExample]:
    """Read a JSONL file of examples; bad rows raise DatasetError naming file:line."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p}: no such training-data file")
    out: list[TrainingExample] = []
    with p.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            ex = _parse(line, f"{p}:{i}")
            if ex.pass_rate >= min_pass_rate:
                out.append(ex)
    if not out:
        raise DatasetError(f"{p}: no training examples")
    return out


def save_examples(examples: Iterable[TrainingExample], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for ex in examples:
            f.write(json.dumps(ex.to_dict()) + "\n")
    return p


def solve_prompt(statement: str, starter_code: str = "") -> str:
    """The problem -> solution prompt shared by the canonical builder and `bdc eval`.

    Training and evaluation must see the same input format, so both call this.
    """
    parts = ["Solve the following problem in Python 3. Reply with one ```python code block."]
    statement = statement.strip()
    starter = starter_code.strip("\n")
    if starter.strip() and statement == starter.strip():
        statement = ""  # code-only problems (HumanEval, MBPP): the stub is the statement
    if statement:
        parts.append(statement)
    if starter.strip() and starter.strip() not in statement:
        parts.append(f"Complete this code:\n```python\n{starter}\n```")
    return "\n\n".join(parts)


def code_block(code: str) -> str:
    return f"```python\n{code.strip(chr(10))}\n```"


def canonical_examples(
    datasets: Iterable[str] = ("humaneval", "mbpp"),
    *,
    limit: int | None = None,
    mbpp_path: str | Path | None = None,
) -> list[TrainingExample]:
    """``t2s`` examples from canonical solutions (no thought): input = solve_prompt of the
    problem (the function stub), output = the full reference function in a code block.
    ``limit`` caps the problems per dataset; problems whose reference does not compile are
    skipped. Problems come from ``engine.problems`` (MBPP bodies re-indented there).

    MBPP is skipped silently when no file is found (it is not shipped with bdc): pass
    ``mbpp_path`` or put it where ``bdc datasets list`` looks.
    """
    from engine.problems import load_dataset, resolve_path

    out: list[TrainingExample] = []
    for name in datasets:
        if name not in ("humaneval", "mbpp"):
            raise DatasetError(f"no canonical solutions for dataset {name!r} (humaneval, mbpp)")
        path = Path(mbpp_path) if name == "mbpp" and mbpp_path else resolve_path(name)
        if path is None or not path.is_file():
            continue
        problems = load_dataset(name, path)
        for p in problems[:limit] if limit else problems:
            if not p.solutions:
                continue
            code = p.solutions[0]
            try:  # a few MBPP rows are broken upstream
                compile(code, p.id, "exec")
            except SyntaxError:
                continue
            out.append(
                TrainingExample(
                    stage="t2s",
                    input=solve_prompt(p.statement, p.starter_code),
                    output=code_block(code),
                    pass_rate=1.0,
                    run_id=f"canonical-{name}",
                    node_id="",
                    problem_id=p.id,
                    problem_digest=p.digest,
                )
            )
    return out
