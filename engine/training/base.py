"""Loading the base causal LM for training and inference.

Why a module of its own: every stage (embedding, experts, hypernetwork, merges, evaluation)
must load the *same* base the same way, and 4-bit loading on CPUs carries a bitsandbytes
trap (see :func:`disable_cpu_weight_repacking`) that must be handled in exactly one place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# short names the CLI accepts for the models `bdc models install` converts into the cache
KNOWN_BASES = {
    "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b",
    "qwen": "qwen2.5-coder-0.5b",
    "smollm2-135m": "smollm2-135m",
    "smollm": "smollm2-135m",
}
DEFAULT_BASE = "qwen2.5-coder-0.5b"
# the hub models the installable ones were converted from (their GGUF quantisations): what
# an artefact names as its base, so peft users can load it without bdc's cache
HUB_IDS = {
    "qwen2.5-coder-0.5b": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct",
}
INSTALL_MARKER = "bdc-model.json"  # written by `bdc models install` into each converted folder


def models_dir() -> Path:
    from engine.paths import cache_dir

    return cache_dir() / "models"


def resolve_base(path_or_id: str | None) -> str:
    """A local folder, a short name of an installed model, or a hub id (offline cache only).

    Raises ConfigError when the default model is not installed, naming the command to run.
    """
    name = path_or_id or DEFAULT_BASE
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p)
    short = KNOWN_BASES.get(name.lower())
    if short is not None:
        cand = models_dir() / short
        if cand.is_dir():
            return str(cand)
        raise ConfigError(
            f"base model {name!r} is not installed at {cand}; run `bdc models install {short}` or pass --base PATH"
        )
    if "/" in name and not name.startswith((".", "/")):
        for short, hub_id in HUB_IDS.items():  # an installed conversion of this hub model
            if hub_id.lower() == name.lower() and (models_dir() / short / "config.json").is_file():
                return str(models_dir() / short)
        return name  # hub id: transformers resolves it from the offline HF cache
    raise ConfigError(f"base model {name!r} is neither a folder nor a known model name")


def model_id(path_or_id: str) -> str:
    """The name an artefact records as its base model: a hub id where one is known.

    A folder `bdc models install` converted names the hub model it came from; a snapshot
    in the Hugging Face cache (``models--org--name/snapshots/REV``) names ``org/name``;
    a hub id or short name stays a hub id; any other folder is the user's own and is
    named by its absolute path. :func:`resolve_base` maps each of these back to a folder.
    """
    p = Path(path_or_id).expanduser()
    if p.is_dir():
        marker = p / INSTALL_MARKER
        if marker.is_file():
            try:
                name = json.loads(marker.read_text(encoding="utf-8")).get("name")
            except (OSError, ValueError):
                name = None
            if name in HUB_IDS:
                return HUB_IDS[name]
        parts = p.resolve().parts
        if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
            return parts[-3][len("models--") :].replace("--", "/", 1)
        return str(p.resolve())
    short = KNOWN_BASES.get(path_or_id.lower())
    return HUB_IDS.get(short, path_or_id) if short else path_or_id


def name_base_model(peft_model: Any, base: str, adapters: Sequence[str] | None = None) -> None:
    """Make the adapters' configs name :func:`model_id` of ``base`` (peft records the
    folder the weights were read from, which for bdc is a cache path)."""
    ident = model_id(base)
    for name in adapters if adapters is not None else list(peft_model.peft_config):
        peft_model.peft_config[name].base_model_name_or_path = ident


def default_dtype() -> torch.dtype:
    """bf16 where the CPU has native bf16 (these machines), else fp32."""
    import torch

    return torch.bfloat16 if os.environ.get("BDC_DTYPE", "bf16") == "bf16" else torch.float32


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def disable_cpu_weight_repacking(model: Any) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for AVX512-BF16 CPU inference.

    bitsandbytes 0.50 on AVX512-BF16 CPUs converts a ``Linear4bit`` weight into a packed
    layout at the first forward run without gradients; afterwards the backward pass of that
    layer is wrong (Llama) or crashes (Qwen2 with biases), so LoRA training on top of it
    silently learns garbage. Must be called before the first forward of a model that will
    ever be trained. Returns how many layers were switched.
    """
    try:
        import bitsandbytes as bnb
    except ImportError:  # pragma: no cover - bnb is a dependency
        return 0
    n = 0
    for m in model.modules():
        if isinstance(m, bnb.nn.Linear4bit):
            m.support_avx512bf16_for_cpu = False
            n += 1
    return n


def prepare_4bit_for_training(
    model: Any, *, gradient_checkpointing: bool = True, upcast_fp32: bool | None = None
) -> Any:
    """Make a freshly loaded 4-bit model trainable with LoRA (the QLoRA recipe).

    peft's ``prepare_model_for_kbit_training`` casts *every* non-4-bit parameter to fp32.
    On a GPU that is the usual fp16-stability measure; on a CPU, where compute is bf16 and
    memory is the point of 4-bit, it is the opposite of what we want: the parameters
    bitsandbytes leaves unquantised are the input embedding and the lm_head, which for
    Qwen2.5-Coder-0.5B (untied, vocabulary 151,936) are 43 % of the model, and doubling them
    made the "4-bit" model bigger than the bf16 one (bench/training_memory.py). So
    ``upcast_fp32`` defaults to peft's behaviour on CUDA only; on CPU everything stays in
    the compute dtype, as in bf16 LoRA training.

    Gradient checkpointing (non-reentrant, so frozen embeddings need no input-grad hook)
    keeps one tensor per decoder layer instead of all its activations; it is part of QLoRA.
    """
    import torch

    if upcast_fp32 is None:
        upcast_fp32 = torch.cuda.is_available()
    if upcast_fp32:
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    for p in model.parameters():
        p.requires_grad_(False)
    if gradient_checkpointing:
        enable_checkpointing(model)
    return model


def enable_checkpointing(model: Any) -> None:
    """Non-reentrant activation checkpointing (transformers 5 renamed the method)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:  # pragma: no cover - transformers 4.x
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _own_unquantised_params(model: Any) -> int:
    """Copy the parameters bitsandbytes left unquantised out of the checkpoint's mmap.

    transformers memory-maps the safetensors file; parameters kept in the file's dtype (the
    embedding, lm_head, norms) stay views of that mapping, which keeps the *whole* file
    mapped, and every page read while quantising stays counted in the process's RSS (1.2 GB
    for Qwen2.5-Coder-0.5B instead of the 0.7 GB the 4-bit model needs). Owning copies let
    the mapping go. Returns the bytes copied.
    """
    import torch

    n = 0
    with torch.no_grad():
        for p in model.parameters():
            if p.__class__.__name__ != "Params4bit":
                p.data = p.data.clone()
                n += p.numel() * p.element_size()
    return n


def limit_heap_retention(threshold: int = 128 * 1024) -> bool:
    """Serve tensor-sized allocations with mmap so freed activations go back to the OS.

    glibc raises its mmap threshold dynamically (up to 32 MB) whenever a large block is
    freed; after the first training step, every activation below that size comes from the
    heap, and the heap keeps what is freed. Measured on a 4-bit Qwen2.5-Coder-0.5B step
    (bench/training_memory.py): ~450 MB of RSS held after a checkpointed forward whose live
    tensors were 25 MB. A fixed threshold stops the adjustment. Process-wide, so it is set
    only by training loads. Returns False where mallopt is unavailable (non-glibc).
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, threshold)) and bool(libc.mallopt(m_trim_threshold, threshold))
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False


def _release_freed_memory() -> None:
    """Give memory freed after quantising back to the OS (glibc keeps it otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def load_base_model(
    path: str,
    *,
    quant: str = "none",
    dtype: torch.dtype | None = None,
    for_training: bool = False,
    gradient_checkpointing: bool | None = None,
    upcast_fp32: bool | None = None,
) -> PreTrainedModel:
    """Load the base model; ``quant`` is ``none`` or ``4bit`` (nf4, double quant: QLoRA).

    With ``for_training`` and 4-bit the model is prepared by
    :func:`prepare_4bit_for_training` (frozen, gradient checkpointing unless
    ``gradient_checkpointing=False``); CPU weight repacking is always disabled for 4-bit.
    ``gradient_checkpointing=True`` also turns it on for a full-precision training model.
    """
    import torch
    from transformers import AutoModelForCausalLM

    dtype = dtype or default_dtype()
    if for_training:
        limit_heap_retention()
    if quant == "none":
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        if for_training and gradient_checkpointing:
            enable_checkpointing(model)
    elif quant == "4bit":
        from transformers import BitsAndBytesConfig

        bnb_config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        device_map = "cuda" if torch.cuda.is_available() else "cpu"
        model = AutoModelForCausalLM.from_pretrained(
            path, quantization_config=bnb_config, dtype=dtype, device_map=device_map
        )
        disable_cpu_weight_repacking(model)
        _own_unquantised_params(model)
        _release_freed_memory()
        if for_training:
            model = prepare_4bit_for_training(
                model,
                gradient_checkpointing=True if gradient_checkpointing is None else gradient_checkpointing,
                upcast_fp32=upcast_fp32,
            )
    else:
        raise ConfigError(f"unknown quantisation {quant!r}: use none or 4bit")
    if not for_training:
        model.eval()
    return model


def format_prompt(tokenizer: Any, text: str) -> str:
    """The one prompt format used by training *and* evaluation, so they always agree.

    Chat models get their chat template with the input as the user turn; plain LMs get the
    input followed by a newline.
    """
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
    return text.rstrip() + "\n"
