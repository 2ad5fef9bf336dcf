"""Where bdc keeps its files: the run store, model cache and config (XDG via platformdirs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "bdc"


def data_dir() -> Path:
    return Path(os.environ.get("BDC_HOME") or platformdirs.user_data_dir(APP))


def default_db_path() -> Path:
    """``$BDC_DB``, else ``bdc.db`` in the user data dir."""
    env = os.environ.get("BDC_DB")
    return Path(env) if env else data_dir() / "bdc.db"


def cache_dir() -> Path:
    """Converted models, downloaded wheels, adapters: ``$BDC_CACHE`` or the user cache dir."""
    return Path(os.environ.get("BDC_CACHE") or platformdirs.user_cache_dir(APP))


def config_path() -> Path:
    return Path(os.environ.get("BDC_CONFIG") or Path(platformdirs.user_config_dir(APP)) / "config.toml")
