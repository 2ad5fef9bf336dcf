"""Check, before a run spends anything, that each agent can answer at all.

Without this a run whose local models are not installed, or whose API key is missing,
"finishes" with every call failed and PR 0: correct but useless. Two levels:

- ``unknown_agents``: a provider or model that exists nowhere (a typo such as
  ``nosuch/model-xyz``, an unknown local name, a missing path). A run naming one is refused
  before it is created. Hosted names are checked by litellm's own provider resolution (offline).
- ``problem_with``: an agent that cannot work *here* (local model not installed, API key
  missing). A run leaves it out, and fails with the reasons when none is left. Offline and
  without importing litellm: a hosted provider needs its key in the environment unless the agent
  passes ``api_key`` or points ``api_base`` at its own server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from engine.agents.types import PolicyError, PolicySpec

# provider prefix -> environment variables, any one of which authenticates it
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "mistral": ("MISTRAL_API_KEY",),
    "groq": ("GROQ_API_KEY",),
    "deepseek": ("DEEPSEEK_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY"),
    "openrouter": ("OPENROUTER_API_KEY",),
}
BARE_MODEL_PROVIDERS = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("claude", "anthropic"))


def problem_with(spec: PolicySpec, env: Mapping[str, str] | None = None) -> str | None:
    """Why ``spec`` cannot work here, or None when it looks usable."""
    env = os.environ if env is None else env
    model = spec.model
    if model.startswith("local/"):
        from engine.agents.local.loader import resolve_source

        try:
            resolve_source(model.split("/", 1)[1])
        except PolicyError as e:
            return str(e)
        return None
    extra = spec.extra or {}
    if extra.get("api_key") or extra.get("api_base"):
        return None
    provider = (
        model.split("/", 1)[0]
        if "/" in model
        else next((p for prefix, p in BARE_MODEL_PROVIDERS if model.startswith(prefix)), None)
    )
    keys = PROVIDER_KEYS.get(provider or "")
    if keys and not any(env.get(k) for k in keys):
        return f"{model} needs {' or '.join(keys)} in the environment (or api_key / api_base in the agent's extra)"
    return None


def unknown(spec: PolicySpec) -> str | None:
    """Why ``spec`` names a provider or model that exists nowhere, or None (it may still be unusable here)."""
    model = spec.model
    if model.startswith("scripted:"):
        return None  # checked against the scripted kinds when the run builds its policies
    if model.startswith("local/"):
        from engine.agents.local.loader import resolve_source

        try:
            resolve_source(model.split("/", 1)[1])
        except PolicyError as e:
            return str(e) if e.kind == "unknown_model" else None
        return None
    if model.split("/", 1)[0] in PROVIDER_KEYS or any(model.startswith(p) for p, _ in BARE_MODEL_PROVIDERS):
        return None
    return _litellm_unknown(model, spec.extra or {})


def _litellm_unknown(model: str, extra: Mapping[str, object]) -> str | None:
    import contextlib
    import io

    from engine.agents.llm import import_litellm

    litellm = import_litellm()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # litellm prints a provider list on failure
            litellm.get_llm_provider(
                model, custom_llm_provider=extra.get("custom_llm_provider"), api_base=extra.get("api_base")
            )
    except Exception:  # noqa: BLE001 - litellm's error is a multi-line banner; ours names the model
        if "/" in model:
            return (
                f"unknown provider {model.split('/', 1)[0]!r} in {model!r}: use one litellm knows "
                f"(openai/..., anthropic/..., ollama/..., see https://docs.litellm.ai/docs/providers) or local/<model>"
            )
        return f"unknown model {model!r}: name its provider, e.g. openai/{model}, ollama/{model} or local/<model>"
    return None


def unknown_agents(specs: list[PolicySpec]) -> dict[str, str]:
    """``{agent name: why}`` for every agent naming a provider or model that exists nowhere."""
    return {s.name: msg for s in specs if (msg := unknown(s)) is not None}


def check_agents(specs: list[PolicySpec], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{agent name: problem}`` for every agent that cannot work here."""
    return {s.name: msg for s in specs if (msg := problem_with(s, env)) is not None}
