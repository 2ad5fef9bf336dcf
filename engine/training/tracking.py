"""Training logs for the usual tools (TensorBoard, W&B, MLflow, ...) through accelerate.

Why accelerate's tracking: it already speaks to every tracker people use, each through that
tool's own hook (``WANDB_*``/``MLFLOW_*`` environment variables, a TensorBoard event
folder), so bdc names a tracker and logs dicts, and nothing tracker-specific lives here.
The store keeps receiving every progress event as before (the TUI reads it); trackers are
an extra copy. TensorBoard is the optional extra ``bdc[tensorboard]``; the other trackers
are used when their package is installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

INSTALL_HINT = {"tensorboard": "pip install 'bdc[tensorboard]'"}


def known_trackers() -> list[str]:
    """Every name ``--report-to`` accepts: accelerate's trackers and ``all``."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    return ["all", *LOGGER_TYPE_TO_CLASS]


def check_report_to(names: Sequence[str]) -> list[str]:
    """``names`` validated (ConfigError naming the bad or missing tracker); ``none`` drops out."""
    from accelerate.tracking import get_available_trackers

    wanted = [n.strip().lower() for n in names if n and n.strip().lower() != "none"]
    if not wanted:
        return []
    known = known_trackers()
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(f"--report-to {unknown[0]}: unknown tracker; choose from none, {', '.join(known)}")
    available = {str(t) for t in get_available_trackers()}
    missing = [n for n in wanted if n != "all" and n not in available]
    if missing:
        n = missing[0]
        raise ConfigError(
            f"--report-to {n}: the {n} package is not installed ({INSTALL_HINT.get(n, f'pip install {n}')})"
        )
    if "all" in wanted and not available:
        raise ConfigError("--report-to all: no tracker package is installed (pip install 'bdc[tensorboard]')")
    return wanted


def _hparam(v: Any) -> Any:
    """Trackers' hyper-parameter tables take scalars and strings only."""
    return v if isinstance(v, (int, float, str, bool)) else str(v)


class RunLog:
    """One tracked run: ``log(values, step)`` to every tracker, ``close()`` at the end."""

    def __init__(
        self, report_to: Sequence[str], logging_dir: str | Path, run_name: str, config: Mapping[str, Any] | None = None
    ):
        from accelerate import Accelerator

        names = check_report_to(report_to)
        self.active = bool(names)
        if not self.active:
            return
        Path(logging_dir).mkdir(parents=True, exist_ok=True)
        self._acc = Accelerator(log_with=names, project_dir=str(logging_dir), cpu=True)
        self._acc.init_trackers(run_name, config={k: _hparam(v) for k, v in (config or {}).items()})

    def log(self, values: Mapping[str, Any], step: int) -> None:
        if self.active:
            scalars = {
                k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            }
            if scalars:
                self._acc.log(scalars, step=step)

    def close(self) -> None:
        if self.active:
            self._acc.end_training()
            self.active = False
