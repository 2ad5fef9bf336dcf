"""Getting code out of the TUI: a program is written to a file in the data dir (always
works, over ssh too) and offered to the terminal's clipboard (OSC 52, where supported).

The file holds the program exactly as stored: no line numbers, no highlighting.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.paths import data_dir


def export_dir() -> Path:
    return data_dir() / "exports"


def safe_name(*parts: str) -> str:
    """A file name from ids like ``HumanEval/0`` (slashes and spaces become ``_``)."""
    return "-".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", p).strip("_") for p in parts if p) or "program"


def export_program(app, code: str, *parts: str) -> Path:
    """Write ``code`` to ``<data dir>/exports/<parts>.py``, copy it to the clipboard, tell the user where."""
    path = export_dir() / f"{safe_name(*parts)}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code if code.endswith("\n") else code + "\n", encoding="utf-8")
    app.copy_to_clipboard(code)  # OSC 52: terminals without it ignore the sequence
    app.notify(f"saved to {path} (and offered to the terminal's clipboard)", title="program exported", timeout=8)
    return path
