"""bench/local_generation.py ends, with its TARGET lines, when generation is broken (issue 10: it used to wait forever)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.agents.conftest import make_tiny_llama

BENCH = Path(__file__).resolve().parents[2] / "bench" / "local_generation.py"


def run_bench(model: str, limit_s: float, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, str(BENCH), model],
        capture_output=True,
        text=True,
        timeout=limit_s + 120,
        env={**os.environ, "BENCH_ROUNDS": "1", "BENCH_MAX_TOKENS": "8", "BENCH_TIME_LIMIT_S": str(limit_s), **env},
    )
    return out, time.monotonic() - start


def test_a_model_that_cannot_generate_fails_the_bench_with_its_reason(tmp_path) -> None:
    """The bench's prompts start with "Write", made a token id past the embedding table: every forward fails."""
    from transformers import AutoTokenizer

    folder = make_tiny_llama(tmp_path / "broken")
    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_tokens(["Write"])
    tok.save_pretrained(folder)
    out, took = run_bench(folder, 600)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "generation broken: PolicyError" in out.stdout and "index out of range" in out.stdout
    assert out.stdout.count("measured=error") == 2


def test_the_bench_ends_at_its_time_limit_whatever_it_is_doing(tmp_path) -> None:
    folder = make_tiny_llama(tmp_path / "ok")
    out, took = run_bench(folder, 3)
    assert out.returncode == 1 and "did not finish within 3 s" in out.stdout
    assert out.stdout.count("measured=error") == 2
    assert took < 60  # the limit plus interpreter start-up on a loaded machine
