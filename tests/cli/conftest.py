"""Run ``bdc`` in-process through its real entry point (``engine.cli.main``): the same error
handling, logging set-up and exit codes a user gets, with a throwaway bdc home."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def bdc(bdc_home: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    """``bdc(*args) -> Result`` (exit code, stdout, stderr) in a temporary BDC_HOME."""
    from engine import logs
    from engine.cli import main

    monkeypatch.setenv("COLUMNS", "250")

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        finally:
            logs.teardown()
        cap = capsys.readouterr()
        return Result(code, cap.out, cap.err)

    return run
