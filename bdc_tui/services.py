"""The engine entry points the TUI launches work through, imported lazily and defensively.

The TUI must start (and show stored runs) even when optional engine parts are missing or
fail to import on this machine (no torch wheel, a half-installed model); each helper
returns ``None``/a fallback and the screens disable the actions that need it
(``check_action``) rather than failing when pressed.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Callable

FALLBACK_DATASETS = ("humaneval", "mbpp", "apps", "codecontests")
STRATEGIES = ("mcts-agents", "mcts-single", "best-of-n", "reflexion", "cot")


def _module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except Exception:  # missing or broken optional component: the caller degrades
        return None


def launcher() -> Any | None:
    """``engine.jobs`` when it offers launch_run/launch_job/cancel."""
    mod = _module("engine.jobs")
    if mod is not None and all(hasattr(mod, a) for a in ("launch_run", "launch_job", "cancel")):
        return mod
    return None


def can_launch() -> bool:
    return launcher() is not None


def dataset_names() -> list[str]:
    mod = _module("engine.problems")
    names = getattr(mod, "DATASETS", None) if mod is not None else None
    if names:
        return list(names.keys() if isinstance(names, dict) else names)
    return list(FALLBACK_DATASETS)


def dataset_infos() -> dict[str, dict[str, Any]]:
    """name -> {description, difficulties, file_based} from ``engine.problems.DATASETS``."""
    mod = _module("engine.problems")
    names = getattr(mod, "DATASETS", None) if mod is not None else None
    out: dict[str, dict[str, Any]] = {}
    if isinstance(names, dict) and names:
        for name, info in names.items():
            out[name] = {
                "description": str(getattr(info, "description", "")),
                "difficulties": tuple(getattr(info, "difficulties", ("all",))),
                "file_based": bool(getattr(info, "file_based", True)),
            }
        return out
    return {n: {"description": "", "difficulties": ("all",), "file_based": n != "humaneval"} for n in dataset_names()}


def strategy_names() -> list[str]:
    for name in ("engine.search.registry", "engine.search"):
        mod = _module(name)
        names = getattr(mod, "STRATEGIES", None) if mod is not None else None
        if names:
            return list(names.keys() if isinstance(names, dict) else names)
    return list(STRATEGIES)


def load_problems(dataset: str, path: str | None, subset: dict[str, Any]) -> list[Any]:
    """Problems of ``dataset`` narrowed by ``subset`` (engine.problems does the work)."""
    mod = _module("engine.problems")
    if mod is None or not hasattr(mod, "load_dataset"):
        from engine.errors import DatasetError

        raise DatasetError("dataset loading is not available in this installation (engine.problems.load_dataset)")
    kwargs = {"path": path} if path else {}
    problems = mod.load_dataset(dataset, **kwargs)
    if hasattr(mod, "select_subset"):
        args = {k: v for k, v in subset.items() if v not in (None, "")}
        try:
            problems = mod.select_subset(problems, **args)
        except TypeError:
            # older/newer signature: fall back to the fields every version has
            problems = mod.select_subset(problems, **{k: v for k, v in args.items() if k in ("difficulty", "limit")})
    elif subset.get("limit"):
        problems = list(problems)[: int(subset["limit"])]
    return list(problems)


def _availability(spec: Any) -> str:
    """A warning for the form when an agent cannot work here (the run would leave it out)."""
    preflight = _module("engine.agents.preflight")
    why = preflight.problem_with(spec) if preflight is not None else None
    if why is None:
        return ""
    return "  ✗ not installed (press i on the welcome screen or run `bdc models install`)" if "not installed" in why else f"  ✗ {why}"


def agent_choices() -> list[tuple[str, dict[str, Any]]]:
    """(label, PolicySpec dict) the forms offer: presets, configured agents, offline scripted ones."""
    out: list[tuple[str, dict[str, Any]]] = []
    cfg = _module("engine.agents.config")
    seen: set[str] = set()
    if cfg is not None:
        try:
            for preset, specs in cfg.agent_presets().items():
                for s in specs:
                    d = s.to_dict()
                    if d["name"] not in seen:
                        seen.add(d["name"])
                        out.append((f"{d['name']}  ({d['model']}, {preset}){_availability(s)}", d))
        except Exception:
            pass
    for name in ("canonical", "broken"):
        d = {"name": f"scripted-{name}", "model": f"scripted:{name}", "temperature": 0.0,
             "max_tokens": 768, "role": "offline demo", "extra": {}}
        out.append((f"scripted-{name}  (offline, writes {'the reference' if name == 'canonical' else 'wrong'} code)", d))
    return out


def build_run_config(form: dict[str, Any]) -> dict[str, Any]:
    """The stored run config: ``engine.search.config.RunConfig`` validates and fills defaults.

    ``form`` holds dataset, dataset_path, subset, strategy, agents (PolicySpec dicts),
    search (SearchConfig fields) and budget fields; a ``ConfigError`` names a bad value.
    """
    mod = _module("engine.search.config")
    cls = getattr(mod, "RunConfig", None) if mod is not None else None
    if cls is None:
        return dict(form)
    return cls.from_dict(dict(form)).to_dict()


def catalog_models() -> list[tuple[str, str, bool]]:
    """(name, title, installed) of the installable local models."""
    cat = _module("engine.agents.local.catalog")
    if cat is None:
        return []
    out = []
    for name, m in cat.CATALOG.items():
        try:
            installed = bool(cat.is_installed(name))
        except Exception:
            installed = False
        out.append((name, getattr(m, "title", name), installed))
    return out


def has_api_keys(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    return any(env.get(k) for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"))


def needs_first_start() -> bool:
    """No API key and no installed local model: a search could not run yet."""
    models = catalog_models()
    return not has_api_keys() and bool(models) and not any(inst for _, _, inst in models)


def model_installer() -> Callable[..., Any] | None:
    for name in ("engine.agents.install", "engine.agents", "engine.agents.local"):
        fn = getattr(_module(name), "install_model", None)
        if fn is not None:
            return fn
    return None
