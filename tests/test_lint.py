"""ruff's pyflakes rules hold across the tree: no unused imports or locals, no undefined names.

The rules are in pyproject.toml (``[tool.ruff.lint]``); a failure prints ruff's findings.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing() -> None:
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff, "ruff is a test dependency: pip install -e '.[test]'"
    proc = subprocess.run([ruff, "check", "--output-format", "concise", "engine", "bdc_tui", "bench", "scripts", "tests"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
