"""Test-wide settings: offline hubs, local litellm cost map, a throwaway bdc home."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("BDC_LOCAL_THREADS", "1")  # tiny models: threads only contend

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data when present (real dataset samples); tests using it skip otherwise."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def bdc_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the store, cache and config at a temporary directory."""
    monkeypatch.setenv("BDC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BDC_DB", str(tmp_path / "home" / "bdc.db"))
    monkeypatch.setenv("BDC_CONFIG", str(tmp_path / "home" / "config.toml"))
    return tmp_path / "home"
