"""Which agents a run uses: defaults, presets, the TOML config file and command-line specs.

Nothing configured means the two local models (offline, no key). With OPENAI_API_KEY /
ANTHROPIC_API_KEY in the environment the paper's pair is offered as the ``paper`` preset.
The config file (``bdc config`` shows where) looks like::

    preset = "local"            # or "paper"; ignored when [[agents]] are listed

    [budget]
    max_calls = 500
    max_cost_usd = 2.0

    [local]
    engine = "auto"             # local models on llama.cpp (bdc[llama]) or "transformers"; $BDC_LOCAL_ENGINE wins

    [[agents]]
    name = "gpt"
    model = "openai/gpt-4o-mini"
    temperature = 0.0
    max_tokens = 768
    [agents.extra]
    api_base = "http://localhost:8000/v1"   # or a list of replicas, load-balanced round-robin
    api_key = "sk-..."          # optional: the provider's environment variable works too

A key written here stays here: the file is kept owner-only (0600), ``bdc config`` masks it,
a run stores ``SECRET_REF`` in its place and reads the key again when it builds its agents,
and the logs replace it with ``***``.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from engine.agents.types import Budget, PolicySpec
from engine.errors import ConfigError
from engine.logs import MASK, register_secret
from engine.paths import PRIVATE_FILE, config_path, open_private

log = logging.getLogger(__name__)

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


# -- secrets: masked on screen, kept out of the run store, registered for log redaction ---------------
# A parameter is secret by its name (api_key, aws_secret_access_key, azure_ad_token, an
# Authorization header...) or by a value shaped like a provider key. ``max_tokens`` is not.
_SECRET_NAME = re.compile(
    r"(key|token|secret|password|passwd|credentials?|authorization|auth|cookie)$|secret|passw", re.IGNORECASE
)
_KEY_PREFIXES = ("sk-", "sk_")
# what the run store holds instead of a key from the config file; resolved again when the run
# (or its resume) builds its agents, so a key never has to be written anywhere but the config
SECRET_REF = "<secret: from the config file>"


def is_secret(name: Any, value: Any = None) -> bool:
    """True for a parameter that holds a credential (by its name or its value's shape)."""
    if isinstance(name, str) and _SECRET_NAME.search(name.replace("-", "_")):
        return True
    return isinstance(value, str) and value.startswith(_KEY_PREFIXES) and len(value) >= 12


def _map_secrets(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """A copy of ``obj`` (nested mappings and lists) with ``fn(value)`` for each secret value."""
    if isinstance(obj, Mapping):
        return {
            k: fn(v)
            if is_secret(k, v) and not isinstance(v, (Mapping, list)) and v not in ("", None)
            else _map_secrets(v, fn)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_map_secrets(v, fn) for v in obj]
    return fn(obj) if is_secret(None, obj) else obj


def mask_secrets(obj: Any, replacement: str = MASK) -> Any:
    """A copy of ``obj`` fit to print or store: every secret value replaced."""
    return _map_secrets(obj, lambda v: replacement)


def secret_values(obj: Any) -> list[str]:
    """Every secret string in ``obj`` (registered for log redaction)."""
    found: list[str] = []
    _map_secrets(obj, lambda v: found.append(v) if isinstance(v, str) else None)
    return found


def stored_agent(spec: PolicySpec) -> dict[str, Any]:
    """The PolicySpec dict a run stores: its secrets replaced by ``SECRET_REF``; a local model's
    engine recorded (``extra["local_engine"]``) so the run config says what ran it and a resume keeps it."""
    d = mask_secrets(spec.to_dict(), SECRET_REF)
    if spec.model.startswith("local/"):
        from engine.agents.local.engines import SPEC_KEY, engine_for

        engine = engine_for(spec.model[len("local/") :], spec.extra.get(SPEC_KEY))
        if engine is not None:
            d["extra"] = {**(d.get("extra") or {}), SPEC_KEY: engine}
    return d


def local_engine_setting(path: Path | str | None = None) -> str | None:
    """``[local] engine`` of the config file (llama | transformers | auto), None when unset."""
    p = Path(path) if path is not None else config_path()
    from engine.agents.local.engines import normalize

    return normalize((read_config(p).get("local") or {}).get("engine"), f"{p}: [local] engine")


def _attach(value: Any, source: Any, where: str) -> Any:
    """``value`` with each ``SECRET_REF`` replaced by what ``source`` holds at the same place."""
    if value == SECRET_REF:
        if source in (None, "", SECRET_REF) or isinstance(source, (Mapping, list)):
            raise ConfigError(
                f"{where}: its key was kept out of the run store and {config_path()} no longer "
                "holds it: put it back, or set the provider's environment variable"
            )
        return source
    if isinstance(value, Mapping):
        src = source if isinstance(source, Mapping) else {}
        return {k: _attach(v, src.get(k), f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        src = source if isinstance(source, list) else []
        return [_attach(v, src[i] if i < len(src) else None, where) for i, v in enumerate(value)]
    return value


def _has_ref(obj: Any) -> bool:
    if isinstance(obj, Mapping):
        return any(_has_ref(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_ref(v) for v in obj)
    return obj == SECRET_REF


# -- the config file ------------------------------------------------------------------------------
def read_config(path: Path | str | None = None) -> dict[str, Any]:
    """The parsed config file, ``{}`` when it does not exist. A wrong shape is a ConfigError
    naming the file and key; a file holding a key that others can read is made owner-only."""
    p = Path(path) if path is not None else config_path()
    if not p.exists():
        return {}
    try:
        with p.open("rb") as f:
            cfg = tomllib.load(f)
    except UnicodeDecodeError as e:
        line = e.object[: e.start].count(b"\n") + 1
        raise ConfigError(f"{p}:{line}: not UTF-8 text (bad byte {e.object[e.start]:#04x}); save it as UTF-8") from None
    except (tomllib.TOMLDecodeError, OSError) as e:
        raise ConfigError(f"{p}: cannot read config: {e}") from e
    secrets = secret_values(cfg)
    for value in secrets:  # first: an error message below must not show them either
        register_secret(value)
    _check_shape(cfg, p)
    if secrets:
        _keep_private(p)
    return cfg


def _check_shape(cfg: dict[str, Any], p: Path) -> None:
    if "preset" in cfg and not isinstance(cfg["preset"], str):
        raise ConfigError(f"{p}: 'preset' must be a string (local or paper), got {cfg['preset']!r}")
    if "budget" in cfg and not isinstance(cfg["budget"], dict):
        raise ConfigError(
            f"{p}: 'budget' must be a [budget] table (max_calls, max_tokens, max_cost_usd), got {cfg['budget']!r}"
        )
    if "local" in cfg and not isinstance(cfg["local"], dict):
        raise ConfigError(f"{p}: 'local' must be a [local] table (engine = \"llama\"), got {cfg['local']!r}")
    agents = cfg.get("agents")
    if agents is not None and (not isinstance(agents, list) or not all(isinstance(a, dict) for a in agents)):
        raise ConfigError(
            f"{p}: 'agents' must be a list of [[agents]] tables (each with a model), got {mask_secrets(agents)!r}"
        )
    for i, a in enumerate(agents or []):
        if "extra" in a and not isinstance(a["extra"], dict):
            raise ConfigError(f"{p}: [[agents]] #{i + 1}: 'extra' must be a table, got {mask_secrets(a['extra'])!r}")


def _keep_private(p: Path) -> None:
    """A config that holds a key is owner-only: tighten it, or say in one line that we could not."""
    try:
        st = p.stat()
    except OSError:
        return
    if not st.st_mode & 0o077:
        return
    try:
        os.chmod(p, PRIVATE_FILE)
    except OSError as e:
        log.warning("%s holds a key and others can read it (%s); run: chmod 600 %s", p, e.strerror, p)
        return
    log.warning(
        "%s holds a key and was readable by others (mode %o): made it owner-only (600)", p, stat.S_IMODE(st.st_mode)
    )


def spec_from_dict(d: Mapping[str, Any], where: str = "agent") -> PolicySpec:
    if not isinstance(d, Mapping) or not d.get("model"):
        raise ConfigError(f"{where}: every agent needs a 'model' (e.g. 'openai/gpt-4o-mini' or 'local/smollm2-135m')")
    known = {"name", "model", "temperature", "max_tokens", "role", "extra"}
    unknown = set(d) - known
    if not isinstance(d.get("extra") or {}, Mapping):
        raise ConfigError(f"{where}: 'extra' must be a table of parameters, got {d['extra']!r}")
    extra = dict(d.get("extra") or {})
    for k in unknown:  # flat generation params (top_p, api_base...) go to extra
        extra[k] = d[k]
    try:
        spec = PolicySpec(
            name=str(d.get("name") or d["model"].split("/")[-1]),
            model=str(d["model"]),
            temperature=float(d.get("temperature", 0.0)),
            max_tokens=int(d.get("max_tokens", 768)),
            role=str(d.get("role", "")),
            extra=extra,
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: bad value: {e}") from e
    _check_api_base(spec.extra, where)
    if _has_ref(spec.extra):
        spec.extra = _attach(spec.extra, _configured_extra(spec.name), f"agent {spec.name!r}")
    return spec


def _check_api_base(extra: dict[str, Any], where: str) -> None:
    """``api_base`` is one URL or a non-empty list of URLs (replicas, load-balanced by the
    LLM client); a one-element list is the URL itself."""
    base = extra.get("api_base")
    if not isinstance(base, (list, tuple)):
        return
    if not base or not all(isinstance(b, str) and b.strip() for b in base):
        raise ConfigError(f"{where}: 'api_base' must be a URL or a non-empty list of URLs, got {base!r}")
    extra["api_base"] = base[0] if len(base) == 1 else list(base)


def _configured_extra(name: str) -> dict[str, Any] | None:
    """The ``extra`` of the config file's agent called ``name`` (where stored runs get keys)."""
    for i, d in enumerate(read_config().get("agents") or []):
        if isinstance(d, Mapping) and str(d.get("name") or str(d.get("model", "")).split("/")[-1]) == name:
            return spec_from_dict(d, f"config [[agents]] #{i + 1}").extra
    return None


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
                raise ConfigError(
                    f"unknown or unavailable agent preset {chosen!r}: choose from {sorted(presets)}{hint}"
                )
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
    out: dict[str, Any] = {}
    for key, kind in (("max_calls", int), ("max_tokens", int), ("max_cost_usd", float)):
        v = vals[key]
        if v is None:
            out[key] = None
            continue
        try:
            if isinstance(v, bool):
                raise TypeError
            out[key] = kind(v)
        except (TypeError, ValueError):
            where = Path(path) if path is not None else config_path()
            raise ConfigError(
                f"{where}: [budget] {key} = {v!r} is not {'an integer' if kind is int else 'a number'}"
            ) from None
    return Budget(**out)


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
                lines += [
                    f"{_toml_key(a)} = {_toml_value(b)}" for a, b in item.items() if a not in sub and b is not None
                ]
                for a, b in sub.items():
                    if b:
                        lines += [f"[{_toml_key(k)}.{_toml_key(a)}]"]
                        lines += [f"{_toml_key(x)} = {_toml_value(y)}" for x, y in b.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def write_config(cfg: Mapping[str, Any], path: Path | str | None = None) -> Path:
    p = Path(path) if path is not None else config_path()
    tmp = p.with_suffix(p.suffix + ".tmp")
    with open_private(tmp, "w", encoding="utf-8") as f:  # owner-only: a config may hold a key
        f.write(dump_config(cfg))
    tmp.replace(p)
    return p


def default_config() -> dict[str, Any]:
    """What ``bdc config --init`` writes: the local defaults, spelled out to edit."""
    return {
        "preset": "",
        "budget": {"max_calls": 1000, "max_cost_usd": 5.0},
        "agents": [{k: v for k, v in s.to_dict().items() if k != "extra" or v} for s in default_agent_specs()],
    }
