"""Loading the base causal LM for training and inference.

Why a module of its own: every stage (embedding, experts, hypernetwork, merges, evaluation)
must load the *same* base the same way, and 4-bit loading on CPUs carries a bitsandbytes
trap (see :func:`disable_cpu_weight_repacking`) that must be handled in exactly one place.
"""

from __future__ import annotations

import os
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
            f"base model {name!r} is not installed at {cand}; run `bdc models install {short}` "
            "or pass --base PATH"
        )
    if "/" in name and not name.startswith((".", "/")):
        return name  # hub id: transformers resolves it from the offline HF cache
    raise ConfigError(f"base model {name!r} is neither a folder nor a known model name")


def default_dtype() -> "torch.dtype":
    """bf16 where the CPU has native bf16 (these machines), else fp32."""
    import torch

    return torch.bfloat16 if os.environ.get("BDC_DTYPE", "bf16") == "bf16" else torch.float32


def load_tokenizer(path: str) -> "PreTrainedTokenizerBase":
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
    dtype: "torch.dtype | None" = None,
    for_training: bool = False,
    gradient_checkpointing: bool | None = None,
    upcast_fp32: bool | None = None,
) -> "PreTrainedModel":
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
