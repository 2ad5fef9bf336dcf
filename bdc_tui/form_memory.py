"""The launch forms' last choices, kept between sessions in the user's data dir.

One small JSON file (``tui-forms.json``), readable by its owner only: it can hold
dataset and adapter paths the user may not want other accounts to see. Which agents or
solvers were ticked is never kept — a form never opens with heavy work pre-selected.
A missing or damaged file just means empty forms.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "tui-forms.json"


def path() -> Path:
    from engine.paths import data_dir

    return data_dir() / FILE_NAME


def _read() -> dict[str, Any]:
    try:
        data = json.loads(path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load(form: str) -> dict[str, Any]:
    """The remembered values of one form ({} when there are none)."""
    values = _read().get(form)
    return values if isinstance(values, dict) else {}


def save(form: str, values: dict[str, Any]) -> None:
    """Replace one form's remembered values (best effort: a read-only home loses nothing else)."""
    target = path()
    data = _read()
    data[form] = {k: v for k, v in values.items() if isinstance(v, (str, int, float, list)) and not isinstance(v, bool)}
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{FILE_NAME}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o600)  # an old leftover tmp file may have had wider rights
        os.replace(tmp, target)
    except OSError:
        pass
