"""Configs (peft's tuner split: config here, the layer in layer.py, the model in
composed.py). Plain dataclasses, JSON-friendly, so a job can store them and a resumed job
can check it runs with the same settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine.errors import ConfigError

LLAMA_LIKE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown setting(s) {', '.join(sorted(unknown))}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)


@dataclass
class LoraSettings(_Dict):
    """One LoRA expert (eq. 13). All experts of a DisenLoRA model share r and targets."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = LLAMA_LIKE_TARGETS

    def to_peft(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            task_type="CAUSAL_LM",
            bias="none",
        )


@dataclass
class TrainSettings(_Dict):
    """The optimisation loop shared by experts, SFT-on-all and the hypernetwork."""

    epochs: int = 1
    max_steps: int | None = None  # caps the step count; None = epochs over the data
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 2e-4
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_length: int = 1024
    seed: int = 0
    checkpoint_every: int = 50
    quant: str = "none"  # none | 4bit (QLoRA)
    # trackers that also get loss, lr and eval metrics (engine/training/tracking.py);
    # logs go to logging_dir, default <the adapter's folder>/logs
    report_to: tuple[str, ...] = ()
    logging_dir: str | None = None
    # share of the examples held out; their loss is evaluated after every epoch (eval/loss)
    eval_fraction: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.report_to, str):
            self.report_to = tuple(n for n in self.report_to.split(",") if n)
        self.report_to = tuple(self.report_to)
        if self.batch_size < 1 or self.grad_accum < 1 or self.epochs < 1:
            raise ConfigError("batch_size, grad_accum and epochs must be >= 1")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}")
        if self.quant not in ("none", "4bit"):
            raise ConfigError(f"quant must be none or 4bit, got {self.quant!r}")


@dataclass
class HyperSettings(_Dict):
    """The hypernetwork f (eq. 14): MLP over [e_i, cos(e_i, mu_1..K)] -> G in R^{L x K x r}.

    ``gate``: ``softmax`` normalises over the K experts for every (layer, rank) slot, so a
    gate is a per-rank convex combination of experts (the zero-initialised head starts as
    the uniform average); ``sigmoid`` gives independent weights in (0, 1).
    """

    hidden: int = 256
    gate: str = "softmax"
    temperature: float = 1.0
    dropout: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gate not in ("softmax", "sigmoid"):
            raise ConfigError(f"gate must be softmax or sigmoid, got {self.gate!r}")


SHARED_METHODS = ("linear", "ties")
# Twin-Merging: the paper's released configuration merges the shared expert by task arithmetic, lambda 0.3
DEFAULT_SCALING = {"linear": 0.3, "ties": 1.0}


@dataclass
class TwinSettings(_Dict):
    """How the shared expert is merged and how much rank each part keeps."""

    shared: str = "linear"  # linear (task arithmetic) | ties
    scaling: float | None = None  # lambda; None = DEFAULT_SCALING[shared]
    density: float = 0.5  # TIES: fraction of each dW_k kept by magnitude
    shared_rank: int | None = None  # None = K * r
    exclusive_rank: int | None = None  # None = the experts' rank r

    def __post_init__(self) -> None:
        if self.shared not in SHARED_METHODS:
            raise ConfigError(f"shared expert merge must be one of {', '.join(SHARED_METHODS)}, got {self.shared!r}")
        if not 0.0 < self.density <= 1.0:
            raise ConfigError(f"density must be in (0, 1], got {self.density}")
        for name in ("shared_rank", "exclusive_rank"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ConfigError(f"{name} must be >= 1, got {v}")

    @property
    def lam(self) -> float:
        return DEFAULT_SCALING[self.shared] if self.scaling is None else float(self.scaling)


@dataclass
class RouterSettings(_Dict):
    """The router MLP and its routing weights ``softmax(logits / temperature)``.

    The paper's released router is two hidden layers with dropout 0.5; hidden width is
    smaller here (the encodings are 384-d MiniLM vectors and a cluster set has hundreds,
    not tens of thousands, of examples). A temperature below 1 sharpens the routing
    towards the predicted expert, above 1 spreads it.
    """

    hidden: int = 256
    dropout: float = 0.5
    temperature: float = 1.0
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"router temperature must be positive, got {self.temperature}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
