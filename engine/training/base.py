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


def load_base_model(
    path: str,
    *,
    quant: str = "none",
    dtype: "torch.dtype | None" = None,
    for_training: bool = False,
) -> "PreTrainedModel":
    """Load the base model; ``quant`` is ``none`` or ``4bit`` (nf4, double quant: QLoRA).

    With ``for_training`` and 4-bit, peft's ``prepare_model_for_kbit_training`` runs (fp32
    norms, input grads for checkpointing) and CPU repacking is disabled.
    """
    import torch
    from transformers import AutoModelForCausalLM

    dtype = dtype or default_dtype()
    if quant == "none":
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
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
        if for_training:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
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
