"""Which problems an artifact was trained on, so evaluation can refuse to score them.

Every ``bdc cluster`` / ``bdc train`` run records the problems behind its training examples
in ``<out>/trained_on.json`` (merged with what the folder already records, since one folder
accumulates clusters, experts, SFT, the hypernetwork and merges)::

    {"problems": {problem_id: statement digest or ""}, "sources": [data spec, ...]}

A solver loaded from a folder inside an artifact tree (``art/experts/expert_0``) finds the
record of the tree's root by looking up its parents.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TRAINED_ON = "trained_on.json"
_LOOK_UP = 3  # parent folders searched for a record (adapter:art/merges/ties -> art)


def record_trained_problems(out_dir: str | Path, examples: Iterable[Any], source: str) -> Path:
    """Add the examples' problems (``problem_id``, ``problem_digest``) to ``out_dir``'s record.

    Experts of one folder train in parallel (``--backend ray``, or two ``--expert K``
    processes), so the read-modify-write holds an exclusive lock on a sibling lock file and
    writes through a temporary file of its own: no writer loses another's problems.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / TRAINED_ON
    examples = list(examples)
    with open(out / (TRAINED_ON + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rec = _read(path) or {"problems": {}, "sources": []}
        for ex in examples:
            pid = str(getattr(ex, "problem_id", "") or "")
            if pid:
                rec["problems"][pid] = str(getattr(ex, "problem_digest", "") or "") or rec["problems"].get(pid, "")
        if source not in rec["sources"]:
            rec["sources"].append(source)
        fd, tmp = tempfile.mkstemp(prefix=TRAINED_ON + ".", suffix=".tmp", dir=out)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(rec, indent=1, sort_keys=True))
        os.replace(tmp, path)
    return path


def _read(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("problems"), dict):
        return None
    rec.setdefault("sources", [])
    return rec


def trained_problems(paths: Iterable[str | Path]) -> dict[str, str]:
    """``{problem_id: digest}`` recorded for the artifacts at ``paths`` (each path or one of
    its parents holds the record)."""
    out: dict[str, str] = {}
    for p in paths:
        d = Path(p).expanduser()
        for folder in [d, *list(d.parents)[:_LOOK_UP]]:
            rec = _read(folder / TRAINED_ON)
            if rec is not None:
                out.update({str(k): str(v) for k, v in rec["problems"].items()})
                break
    return out
