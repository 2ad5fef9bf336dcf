"""Solvers: the rows of Table 2 behind one interface, ``generate(inputs) -> replies``.

* :class:`HFSolver` - the base model, optionally with one PEFT adapter folder (SFT on all,
  an expert, or a merge baseline). Non-quantised adapters are merged into the weights, so
  generation costs exactly what the base costs.
* :class:`DisenLoRASolver` - the composed model; each input gets its own gates from the
  hypernetwork. One input at a time uses the folded fast path.
* :class:`TwinSolver` - Twin-Merging: the shared expert plus the exclusive experts weighted
  by the router, per input (a batch composes each row with its own routing).

Inputs are raw problem texts (``solve_prompt`` output); solvers apply ``format_prompt``
themselves, exactly like training did. Decoding is greedy, as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from engine.errors import ConfigError

MAX_NEW_TOKENS = 2048  # the official release's generation length for evaluation


class Solver(Protocol):
    name: str

    def generate(self, inputs: Sequence[str]) -> list[str]: ...


def _generate(model: Any, tok: Any, inputs: Sequence[str], max_new_tokens: int, **extra: Any) -> list[str]:
    import torch

    from engine.training.base import format_prompt

    tok.padding_side = "left"
    enc = tok([format_prompt(tok, t) for t in inputs], return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = model.generate(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"],
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            **extra,
        )
    return tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


class HFSolver:
    def __init__(
        self,
        base: str,
        adapter: str | Path | None = None,
        *,
        name: str | None = None,
        quant: str = "none",
        max_new_tokens: int = MAX_NEW_TOKENS,
    ):
        from engine.training.base import load_base_model, load_tokenizer

        self.name = name or (Path(adapter).name if adapter else "base")
        self.tok = load_tokenizer(base)
        model = load_base_model(base, quant=quant)
        if adapter is not None:
            from peft import PeftModel

            if not (Path(adapter) / "adapter_config.json").is_file():
                raise ConfigError(f"{adapter}: not a PEFT adapter folder")
            model = PeftModel.from_pretrained(model, str(adapter))
            if quant == "none":
                model = model.merge_and_unload()
        self.model = model.eval()
        self.max_new_tokens = max_new_tokens

    def generate(self, inputs: Sequence[str]) -> list[str]:
        return _generate(self.model, self.tok, inputs, self.max_new_tokens)


class DisenLoRASolver:
    default_name = "DisenLoRA"

    def __init__(
        self,
        path: str | Path,
        *,
        base: str | None = None,
        quant: str = "none",
        max_new_tokens: int = MAX_NEW_TOKENS,
        encoder: Any = None,
        name: str | None = None,
    ):
        from engine.training.hypernet import make_encoder

        self.name = name or self.default_name
        self.model, self.tok, cfg = self.load(path, base=base, quant=quant)
        self.encoder = encoder or make_encoder(cfg["encoder"], self.model, self.tok)
        self.max_new_tokens = max_new_tokens

    @staticmethod
    def load(path: str | Path, **kw: Any) -> tuple[Any, Any, dict[str, Any]]:
        from engine.training.hypernet import load_disenlora

        return load_disenlora(path, **kw)

    def generate(self, inputs: Sequence[str]) -> list[str]:
        import torch

        from engine.training.base import format_prompt

        emb = torch.as_tensor(self.encoder.encode(list(inputs)), dtype=torch.float32)
        self.tok.padding_side = "left"
        enc = self.tok([format_prompt(self.tok, t) for t in inputs], return_tensors="pt", padding=True)
        out = self.model.generate(
            enc["input_ids"],
            emb,
            attention_mask=enc["attention_mask"],
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.tok.pad_token_id,
        )
        return self.tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


class TwinSolver(DisenLoRASolver):
    """Same generation as DisenLoRA (per-row gates, folded for one input); only the model
    differs: ``OUT/twin`` loaded by engine.training.twin.load_twin."""

    default_name = "Twin-Merging"

    @staticmethod
    def load(path: str | Path, **kw: Any) -> tuple[Any, Any, dict[str, Any]]:
        from engine.training.twin import load_twin

        return load_twin(path, **kw)


def make_solvers(
    spec: str,
    *,
    base: str,
    artifacts: str | Path | None = None,
    quant: str = "none",
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> list[Solver]:
    """Solvers for a ``--solver`` value. Trained artefacts are looked up under ``artifacts``
    (the folder given to `bdc train --out`): ``sft/``, ``experts/expert_<k>/``,
    ``merges/<method>/``, ``disenlora/``, ``twin/``. ``adapter:<path>`` evaluates any adapter folder.
    ``experts`` yields one solver per expert (the "SFT on cluster k" rows)."""
    kw = {"quant": quant, "max_new_tokens": max_new_tokens}
    if spec == "base":
        return [HFSolver(base, name="w/o tuning", **kw)]
    if spec.startswith("adapter:"):
        return [HFSolver(base, spec.split(":", 1)[1], **kw)]
    if artifacts is None:
        raise ConfigError(f"--solver {spec} needs --artifacts DIR (the `bdc train --out` folder)")
    root = Path(artifacts)
    if spec == "sft":
        return [HFSolver(base, root / "sft", name="SFT on all", **kw)]
    if spec == "experts":
        dirs = sorted((root / "experts").glob("expert_*"), key=lambda p: int(p.name.split("_")[1]))
        if not dirs:
            raise ConfigError(f"{root / 'experts'}: no experts trained")
        return [HFSolver(base, d, name=f"SFT on cluster {d.name.split('_')[1]}", **kw) for d in dirs]
    if spec.startswith("merge:"):
        method = spec.split(":", 1)[1]
        return [HFSolver(base, root / "merges" / method, name=f"merge {method}", **kw)]
    if spec == "disenlora":
        return [DisenLoRASolver(root / "disenlora", base=base, **kw)]
    if spec == "twin":
        return [TwinSolver(root / "twin", base=base, **kw)]
    raise ConfigError(f"unknown solver {spec!r}: base, sft, experts, merge:<method>, disenlora, twin, adapter:<path>")
