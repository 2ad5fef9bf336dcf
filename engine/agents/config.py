"""Which agents a run uses: defaults, presets, the TOML config file and command-line specs.

Nothing configured means the two local models (offline, no key). With OPENAI_API_KEY /
ANTHROPIC_API_KEY in the environment the paper's pair is offered as the ``paper`` preset.
The config file (``bdc config`` shows where) looks like::

    preset = "local"            # or "paper"; ignored when [[agents]] are listed

    [budget]
    max_calls = 500
    max_cost_usd = 2.0

    [[agents]]
    name = "gpt"
    model = "openai/gpt-4o-mini"
    temperature = 0.0
    max_tokens = 768
    [agents.extra]
    api_base = "http://localhost:8000/v1"
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from engine.agents.types import Budget, PolicySpec
from engine.errors import ConfigError
from engine.paths import config_path

PAPER_OPENAI = "openai/gpt-4o-mini"
PAPER_ANTHROPIC = "anthropic/claude-3-5-sonnet-20240620"


def default_agent_specs() -> list[PolicySpec]:
    """The embedded default: the two installable local models, greedy like the paper."""
    return [
        PolicySpec(name="qwen-coder", model="local/qwen2.5-coder-0.5b", role="coder"),
        PolicySpec(name="smollm2", model="local/smollm2-135m", role="generalist"),
    ]


def paper_agent_specs(env: Mapping[str, str] | None = None) -> list[PolicySpec]:
    """The paper's pair for the keys present; one key alone is paired with local Qwen so a
    distinct policy still exists for reflection. Empty when no key is set."""
    env = os.environ if env is None else env
    specs = []
    if env.get("OPENAI_API_KEY"):
        specs.append(PolicySpec(name="gpt-4o-mini", model=PAPER_OPENAI, role="paper"))
    if env.get("ANTHROPIC_API_KEY"):
        specs.append(PolicySpec(name="claude-3.5-sonnet", model=PAPER_ANTHROPIC, role="paper"))
    if len(specs) == 1:
        specs.append(default_agent_specs()[0])
    return specs


def agent_presets(env: Mapping[str, str] | None = None) -> dict[str, list[PolicySpec]]:
    """Named agent sets offered to the user (the TUI shows them as choices)."""
    presets = {"local": default_agent_specs()}
    paper = paper_agent_specs(env)
    if paper:
        presets["paper"] = paper
    return presets


def read_config(path: Path | str | None = None) -> dict[str, Any]:
    """The parsed config file, ``{}`` when it does not exist."""
    p = Path(path) if path is not None else config_path()
    if not p.exists():
        return {}
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, OSError) as e:
        raise ConfigError(f"{p}: cannot read config: {e}") from e


def spec_from_dict(d: Mapping[str, Any], where: str = "agent") -> PolicySpec:
    if not isinstance(d, Mapping) or not d.get("model"):
        raise ConfigError(f"{where}: every agent needs a 'model' (e.g. 'openai/gpt-4o-mini' or 'local/smollm2-135m')")
    known = {"name", "model", "temperature", "max_tokens", "role", "extra"}
    unknown = set(d) - known
    extra = dict(d.get("extra") or {})
    for k in unknown:  # flat generation params (top_p, api_base...) go to extra
        extra[k] = d[k]
    try:
        return PolicySpec(
            name=str(d.get("name") or d["model"].split("/")[-1]),
            model=str(d["model"]),
            temperature=float(d.get("temperature", 0.0)),
            max_tokens=int(d.get("max_tokens", 768)),
            role=str(d.get("role", "")),
            extra=extra,
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: bad value: {e}") from e


def parse_agent_arg(arg: str) -> PolicySpec:
    """A command-line agent: ``model`` or ``name=model`` or ``name=model@temperature``."""
    name, _, rest = arg.partition("=") if "=" in arg else ("", "", arg)
    model, _, temp = rest.partition("@")
    if not model.strip():
        raise ConfigError(f"bad --agent {arg!r}: expected [name=]provider/model[@temperature]")
    d: dict[str, Any] = {"model": model.strip()}
    if name.strip():
        d["name"] = name.strip()
    if temp:
        d["temperature"] = temp
    return spec_from_dict(d, f"--agent {arg!r}")


def load_agents(
    path: Path | str | None = None,
    *,
    agents: list[str] | None = None,
    preset: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[PolicySpec]:
    """The PolicySpecs of a run: command-line ``agents`` > ``preset`` > config file > defaults.

    Names must be unique (they key the tree's per-policy statistics).
    """
    cfg = read_config(path)
    if agents:
        specs = [parse_agent_arg(a) for a in agents]
    else:
        chosen = preset or cfg.get("preset")
        if chosen:
            presets = agent_presets(env)
            if chosen not in presets:
                hint = " (set OPENAI_API_KEY and/or ANTHROPIC_API_KEY)" if chosen == "paper" else ""
                raise ConfigError(f"unknown or unavailable agent preset {chosen!r}: choose from {sorted(presets)}{hint}")
            specs = presets[chosen] if preset or not cfg.get("agents") else []
        else:
            specs = []
        if not specs and cfg.get("agents"):
            specs = [spec_from_dict(d, f"config [[agents]] #{i + 1}") for i, d in enumerate(cfg["agents"])]
        if not specs:
            specs = default_agent_specs()
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"agent names must be unique, repeated: {sorted(dup)}")
    return specs


def load_budget(path: Path | str | None = None, **overrides: Any) -> Budget:
    """The run budget from ``[budget]`` in the config; keyword overrides win when not None."""
    cfg = read_config(path).get("budget", {}) or {}
    vals = {k: cfg.get(k) for k in ("max_calls", "max_tokens", "max_cost_usd")}
    vals.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Budget(
            max_calls=int(vals["max_calls"]) if vals["max_calls"] is not None else None,
            max_tokens=int(vals["max_tokens"]) if vals["max_tokens"] is not None else None,
            max_cost_usd=float(vals["max_cost_usd"]) if vals["max_cost_usd"] is not None else None,
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"[budget]: bad value: {e}") from e


# -- a tiny TOML writer for the shapes above (no extra dependency) ---------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{esc}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def dump_config(cfg: Mapping[str, Any]) -> str:
    """TOML text for top-level scalars, tables of scalars and ``[[agents]]`` with ``extra``."""
    lines: list[str] = []
    for k, v in cfg.items():
        if not isinstance(v, (Mapping, list)) or (isinstance(v, list) and not any(isinstance(x, Mapping) for x in v)):
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in cfg.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{_toml_key(k)}]"]
            lines += [f"{_toml_key(a)} = {_toml_value(b)}" for a, b in v.items() if b is not None]
    for k, v in cfg.items():
        if isinstance(v, list) and any(isinstance(x, Mapping) for x in v):
            for item in v:
                lines += ["", f"[[{_toml_key(k)}]]"]
                sub = {a: b for a, b in item.items() if isinstance(b, Mapping)}
                lines += [f"{_toml_key(a)} = {_toml_value(b)}" for a, b in item.items() if a not in sub and b is not None]
                for a, b in sub.items():
                    if b:
                        lines += [f"[{_toml_key(k)}.{_toml_key(a)}]"]
                        lines += [f"{_toml_key(x)} = {_toml_value(y)}" for x, y in b.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def write_config(cfg: Mapping[str, Any], path: Path | str | None = None) -> Path:
    p = Path(path) if path is not None else config_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(dump_config(cfg))
    tmp.replace(p)
    return p


def default_config() -> dict[str, Any]:
    """What ``bdc config --init`` writes: the local defaults, spelled out to edit."""
    return {
        "preset": "",
        "budget": {"max_calls": 1000, "max_cost_usd": 5.0},
        "agents": [
            {k: v for k, v in s.to_dict().items() if k != "extra" or v} for s in default_agent_specs()
        ],
    }
