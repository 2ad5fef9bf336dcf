"""DisenLoRA and Twin artefacts on disk: safetensors weights plus a JSON config.

Why this format: a pickled ``.pt`` can only be opened by code that trusts it and knows
bdc's classes; safetensors holds plain named tensors any tool reads, and the JSON config
says everything else (base model id, expert folders, encoder, the gating module's shape).
The experts, the twin's shared/exclusive parts and every merge are standard PEFT adapter
folders next to it.

A folder holds::

    <name>.json          the config: {"format", "format_version", "base", "experts", ...}
    <name>.safetensors   the gating module's state dict (hypernetwork or router)

``format`` names the method (``bdc-disenlora``, ``bdc-twin``); the config is open: callers
add keys (metrics, the trained problem ids...) and readers ignore what they don't know.
Expert folders are stored relative to the artefact folder, so a whole ``--out`` folder
can be moved or copied. :func:`read_config` and :func:`load_gating_state` are the loader
(the README's "Artefacts" section shows them in use).

Artefacts written before this format (``hypernet.pt`` / ``router.pt``) still load: they
are plain state dicts read with ``torch.load(weights_only=True)``, which unpickles tensors
only, so no code runs; nothing is rewritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

FORMAT_VERSION = 1
WEIGHTS_SUFFIX = ".safetensors"
LEGACY_SUFFIX = ".pt"


def save_gating(
    module: Any, out_dir: str | Path, config: Mapping[str, Any], *, config_file: str, weights_file: str
) -> Path:
    """Write ``module``'s state dict as safetensors and ``config`` as JSON into ``out_dir``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    fmt = str(config.get("format", ""))
    _atomic(out / weights_file, lambda tmp: save_file(state, str(tmp), metadata={"format": fmt}))
    body = {"format_version": FORMAT_VERSION, **config}
    _atomic(out / config_file, lambda tmp: tmp.write_text(json.dumps(body, indent=1)))
    legacy = (out / weights_file).with_suffix(LEGACY_SUFFIX)
    legacy.unlink(missing_ok=True)  # a re-save replaces an old pickle, never leaves two weights
    return out


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def read_config(path: str | Path, config_file: str, *, what: str, command: str) -> dict[str, Any]:
    """The JSON config of an artefact folder; one clear ConfigError when it is missing or bad."""
    p = Path(path) / config_file
    if not p.is_file():
        raise ConfigError(f"{Path(path)}: not a {what} folder (no {config_file}); run `{command}`")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: not a readable {what} config ({e})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{p}: not a {what} config (expected a JSON object)")
    version = int(cfg.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise ConfigError(f"{p}: written by a newer bdc (format {version}, this one reads <= {FORMAT_VERSION})")
    return cfg


def load_gating_state(path: str | Path, weights_file: str) -> dict[str, Any]:
    """The gating module's state dict from ``weights_file`` (or its legacy ``.pt``)."""
    p = Path(path) / weights_file
    if p.is_file():
        from safetensors.torch import load_file

        return load_file(str(p))
    legacy = p.with_suffix(LEGACY_SUFFIX)
    if legacy.is_file():
        import torch

        return torch.load(legacy, map_location="cpu", weights_only=True)
    raise ConfigError(f"{Path(path)}: no {weights_file} (the artefact is incomplete; train it again)")


def relative_dirs(dirs: Sequence[str | Path], root: str | Path) -> list[str]:
    """``dirs`` relative to ``root`` (POSIX separators), so the folder tree can move."""
    root_abs = Path(root).resolve()
    return [Path(os.path.relpath(Path(d).resolve(), root_abs)).as_posix() for d in dirs]


def resolve_dirs(dirs: Sequence[str], root: str | Path) -> list[str]:
    """Inverse of :func:`relative_dirs`; absolute entries (older artefacts) are kept."""
    return [d if Path(d).is_absolute() else str((Path(root) / d).resolve()) for d in dirs]
