"""Which engine runs a local model: llama.cpp (the optional ``bdc[llama]`` extra) or transformers.

The choice, first that applies:

1. ``$BDC_LOCAL_ENGINE`` (``llama`` | ``transformers`` | ``auto``);
2. ``[local] engine`` in the config file (same values);
3. ``auto``: llama.cpp when ``llama_cpp`` can be imported, else transformers.

An explicit ``llama`` without an importable ``llama_cpp`` falls back to transformers with one log
line saying how to install it; so does a model llama.cpp cannot open (a folder or hub id: only a
GGUF file runs natively), per model. ``bdc search`` records the engine it resolved in every local
agent's ``extra["local_engine"]`` (run config), so a resumed run keeps it.

Measured on this 2-core machine (bench/local_generation.py, README "Local models"): llama.cpp runs
the catalog's GGUFs several times faster than transformers does on their dequantised weights.
"""

from __future__ import annotations

import functools
import logging
import os

log = logging.getLogger(__name__)

LLAMA = "llama"
TRANSFORMERS = "transformers"
ENGINES = (LLAMA, TRANSFORMERS)
ENGINE_SETTINGS = (*ENGINES, "auto")
ENV = "BDC_LOCAL_ENGINE"
SPEC_KEY = "local_engine"  # where a local agent's spec records its engine (PolicySpec.extra)
INSTALL_HINT = "pip install 'bdc[llama]' (builds llama-cpp-python from source: gcc and cmake needed)"


@functools.cache
def llama_import_error() -> str | None:
    """Why ``llama_cpp`` cannot be used here (None when it imports). Imported once per process."""
    try:
        import llama_cpp  # noqa: F401
    except Exception as e:  # noqa: BLE001 - a broken shared library raises OSError, not ImportError
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return None


def llama_available() -> bool:
    return llama_import_error() is None


def normalize(value: object, where: str) -> str | None:
    """``value`` as an engine setting (None when unset); a wrong value is a ConfigError naming ``where``."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text not in ENGINE_SETTINGS:
        from engine.errors import ConfigError

        raise ConfigError(f"{where}: local engine {value!r} is not one of {', '.join(ENGINE_SETTINGS)}")
    return text


def requested_engine() -> str:
    """The engine asked for (``llama`` | ``transformers`` | ``auto``): environment, then config file."""
    env = normalize(os.environ.get(ENV), f"${ENV}")
    if env is not None:
        return env
    from engine.agents.config import local_engine_setting

    return local_engine_setting() or "auto"


_warned: set[str] = set()


def resolve_engine(requested: str | None = None) -> str:
    """The engine that will run: ``requested`` (default ``requested_engine()``) when it can, else
    transformers, with one log line per process when an explicit ``llama`` cannot be honoured."""
    want = normalize(requested, "local engine") if requested is not None else requested_engine()
    if want == TRANSFORMERS:
        return TRANSFORMERS
    if llama_available():
        return LLAMA
    if want == LLAMA and "import" not in _warned:
        _warned.add("import")
        log.warning("llama.cpp engine unavailable (%s): transformers engine; %s", llama_import_error(), INSTALL_HINT)
    return TRANSFORMERS


def engine_for(source: str, requested: str | None = None) -> str | None:
    """The engine that would run ``local/<source>`` (without loading it): ``resolve_engine(requested)``,
    transformers when llama.cpp cannot open that model; None when the model itself is unusable."""
    from engine.agents.types import PolicyError

    engine = resolve_engine(requested)
    if engine != LLAMA:
        return engine
    from engine.agents.local.loader import gguf_source

    try:
        path, why = gguf_source(source)
    except PolicyError:
        return None
    if path is None:
        note_fallback(source, why)
        return TRANSFORMERS
    return LLAMA


def note_fallback(source: str, why: str) -> None:
    """One log line when a model asked for llama.cpp runs on transformers instead."""
    if source not in _warned:
        _warned.add(source)
        log.warning("local model %s: llama.cpp cannot run it (%s): transformers engine", source, why)
