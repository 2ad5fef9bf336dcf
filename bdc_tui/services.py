"""The engine entry points the TUI launches work through, in one place.

Imports are lazy (inside each function) so opening the TUI to browse stored runs does not
pay for the dataset registry, the job launcher or the agent presets until a screen needs
them. Every name here is a first-party engine function: they are imported, not probed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def launcher() -> Any:
    """``engine.jobs``: launch_run, launch_job and cancel of background runs and jobs."""
    import engine.jobs

    return engine.jobs


def dataset_infos() -> dict[str, dict[str, Any]]:
    """name -> {description, difficulties, file_based} from ``engine.problems.DATASETS``."""
    from engine.problems import DATASETS

    return {
        name: {
            "description": info.description,
            "difficulties": tuple(info.difficulties),
            "file_based": bool(info.file_based),
        }
        for name, info in DATASETS.items()
    }


def dataset_names() -> list[str]:
    from engine.problems import DATASETS

    return list(DATASETS)


def strategy_names() -> list[str]:
    from engine.search.registry import STRATEGIES

    return list(STRATEGIES)


def load_problems(dataset: str, path: str | None, subset: dict[str, Any]) -> list[Any]:
    """Problems of ``dataset`` narrowed by ``subset`` (engine.problems does the work)."""
    from engine.problems import load_dataset, select_subset

    problems = load_dataset(dataset, path) if path else load_dataset(dataset)
    return list(select_subset(problems, **{k: v for k, v in subset.items() if v not in (None, "")}))


def _availability(spec: Any) -> str:
    """A warning for the form when an agent cannot work here (the run would leave it out)."""
    from engine.agents.preflight import problem_with

    why = problem_with(spec)
    if why is None:
        return ""
    return (
        "  ✗ not installed (press i on the welcome screen or run `bdc models install`)"
        if "not installed" in why
        else f"  ✗ {why}"
    )


def agent_choices() -> list[tuple[str, dict[str, Any]]]:
    """(label, PolicySpec dict) the forms offer: presets, configured agents, offline scripted ones.

    Each dict is what a run stores (``stored_agent``): a configured key becomes a reference
    resolved from the config when the run starts, and a local model names its engine, exactly
    as ``bdc search`` records them.
    """
    from engine.agents.config import agent_presets, stored_agent

    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for preset, specs in [*agent_presets().items(), ("config", _configured_specs())]:
        for s in specs:
            d = stored_agent(s)
            if d["name"] not in seen:
                seen.add(d["name"])
                out.append((f"{d['name']}  ({d['model']}, {preset}){_availability(s)}", d))
    for name in ("canonical", "broken"):
        d = {
            "name": f"scripted-{name}",
            "model": f"scripted:{name}",
            "temperature": 0.0,
            "max_tokens": 768,
            "role": "offline demo",
            "extra": {},
        }
        out.append(
            (f"scripted-{name}  (offline, writes {'the reference' if name == 'canonical' else 'wrong'} code)", d)
        )
    return out


def _configured_specs() -> list[Any]:
    """The config file's ``[[agents]]`` (none when the file is missing or wrong: the forms'
    preflight and ``bdc config`` name what is wrong with it)."""
    from engine.agents.config import read_config, spec_from_dict
    from engine.errors import ConfigError

    try:
        return [spec_from_dict(d, f"config agent {i + 1}") for i, d in enumerate(read_config().get("agents") or [])]
    except ConfigError:
        return []


def build_run_config(form: dict[str, Any]) -> dict[str, Any]:
    """The stored run config: ``engine.search.config.RunConfig`` validates and fills defaults.

    ``form`` holds dataset, dataset_path, subset, strategy, agents (PolicySpec dicts),
    search (SearchConfig fields) and budget fields; a ``ConfigError`` names a bad value.
    """
    from engine.search.config import RunConfig

    return RunConfig.from_dict(dict(form)).to_dict()


def catalog_models() -> list[tuple[str, str, bool]]:
    """(name, title, installed) of the installable local models."""
    from engine.agents.local.catalog import CATALOG, is_installed

    return [(name, m.title, is_installed(name)) for name, m in CATALOG.items()]


def has_api_keys(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    return any(env.get(k) for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"))


def needs_first_start() -> bool:
    """No API key and no installed local model: a search could not run yet."""
    models = catalog_models()
    return not has_api_keys() and bool(models) and not any(inst for _, _, inst in models)


def model_installer() -> Callable[..., Any]:
    from engine.agents.install import install_model

    return install_model
