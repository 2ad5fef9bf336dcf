"""Test-wide settings: offline hubs, local litellm cost map, a throwaway bdc home."""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("BDC_LOCAL_THREADS", "1")  # tiny models: threads only contend
# models a developer (or an earlier session) installed must not change what tests see: e.g. the
# clustering encoder's "auto" picks an installed base model. Tests get an empty cache of their own.
if "BDC_CACHE" not in os.environ:
    import tempfile

    os.environ["BDC_CACHE"] = tempfile.mkdtemp(prefix="bdc-test-cache-")

# the TUI shows local times: snapshots must not depend on the machine's zone
os.environ["TZ"] = "UTC"
__import__("time").tzset()

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
