"""Loading a local causal LM from a catalog name, a folder, a GGUF file or a hub id."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.agents.local.catalog import CATALOG, installed_gguf, is_installed, model_dir
from engine.agents.types import PolicyError


def resolve_source(source: str) -> tuple[str, str]:
    """(kind, location) for a ``local/<source>`` model: catalog | folder | gguf | hub."""
    if source in CATALOG:
        if not is_installed(source):
            raise PolicyError(
                f"local model {source!r} is not installed: run `bdc models install {source}`",
                model=f"local/{source}",
                kind="not_installed",
            )
        return "folder", str(model_dir(source))
    p = Path(os.path.expanduser(source))
    if p.is_dir():
        return "folder", str(p)
    if p.is_file() and p.suffix.lower() == ".gguf":
        return "gguf", str(p)
    if p.is_absolute() or source.startswith((".", "~")) or source.endswith(".gguf"):
        raise PolicyError(f"local model path {source!r} does not exist", model=f"local/{source}", kind="unknown_model")
    if source.count("/") == 1:
        return "hub", source
    known = ", ".join(CATALOG)
    raise PolicyError(
        f"unknown local model {source!r}: use one of {known}, a folder, a .gguf file or a Hugging Face id",
        model=f"local/{source}",
        kind="unknown_model",
    )


def gguf_source(source: str) -> tuple[str | None, str]:
    """(GGUF file, "") for a ``local/<source>`` model llama.cpp can run, else (None, why not)."""
    if source in CATALOG:
        path = installed_gguf(source)
        if path is None:
            return None, f"its GGUF file is not kept: run `bdc models install {source}` to fetch it"
        return str(path), ""
    kind, where = resolve_source(source)
    if kind == "gguf":
        return where, ""
    return None, f"llama.cpp runs GGUF files, this is a {'Hugging Face id' if kind == 'hub' else 'folder'}"


def clear_gguf_quantizer(model: Any) -> None:
    """A GGUF-loaded model is already dequantized; drop the quantizer so it can be saved."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        try:
            delattr(model.config, "quantization_config")
        except AttributeError:
            model.config.quantization_config = None


TORCH_MODES = ("fp32", "bf16", "int8")
TORCH_MODE_ENV = "BDC_LOCAL_TORCH"


def torch_mode() -> str:
    """How the transformers engine holds weights on CPU: ``$BDC_LOCAL_TORCH`` (fp32 | bf16 | int8), default fp32.

    bench/local_engines.py, Qwen2.5-Coder-0.5B on this 2-core AVX512-BF16 machine: bf16 2.1x and int8
    dynamic quantisation 6x the tokens/s of fp32, but int8 changes greedy replies and neither was measured
    for pass rates, so fp32 stays the default (the llama.cpp engine is the fast path)."""
    value = os.environ.get(TORCH_MODE_ENV, "").strip().lower() or "fp32"
    if value not in TORCH_MODES:
        from engine.errors import ConfigError

        raise ConfigError(f"${TORCH_MODE_ENV}={value!r} is not one of {', '.join(TORCH_MODES)}")
    return value


def quantize_int8(model: Any) -> Any:
    """int8 weights for every Linear (dynamic quantisation: activations stay float), CPU only."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.ao's deprecation notice in favour of torchao, once per load
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def load_model(
    source: str, *, dtype: str | None = None, device: str | None = None, mode: str | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode, ready for ``generate``; ``mode``: ``torch_mode()`` by default
    (``dtype`` overrides its float type)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no tqdm bars on the user's terminal or under the TUI
    kind, where = resolve_source(source)
    mode = mode or torch_mode()
    torch_dtype = getattr(torch, dtype or ("bfloat16" if mode == "bf16" else "float32"))
    try:
        if kind == "gguf":
            p = Path(where)
            tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
            model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=torch_dtype)
            clear_gguf_quantizer(model)
        else:
            tok = AutoTokenizer.from_pretrained(where)
            model = AutoModelForCausalLM.from_pretrained(where, dtype=torch_dtype)
    except (OSError, ValueError) as e:
        hint = " (offline: the model must be in the local Hugging Face cache)" if kind == "hub" else ""
        raise PolicyError(
            f"cannot load local model {source!r}: {str(e).splitlines()[0][:300]}{hint}",
            model=f"local/{source}",
            kind="unknown_model",
        ) from e
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).eval()
    if mode == "int8" and device == "cpu":
        model = quantize_int8(model)
    return model, tok
