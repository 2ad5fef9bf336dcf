"""Model choice shared by the training benchmarks: an installed model if any, else a
random mid-sized Llama saved once under /tmp (nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path


def bench_model() -> tuple[str, str]:
    """(path, description)."""
    from engine.paths import cache_dir

    for name in ("qwen2.5-coder-0.5b", "smollm2-135m"):
        p = cache_dir() / "models" / name
        if (p / "config.json").is_file():
            return str(p), name
    p = Path(os.environ.get("TMPDIR", "/tmp")) / "bdc-bench-llama-1024x8"
    if not (p / "config.json").is_file():
        from engine.training.tiny import make_tiny_llama

        make_tiny_llama(p, hidden=1024, layers=8, heads=16, intermediate=2816, vocab_size=512)
    return str(p), "random llama h1024 x8"
