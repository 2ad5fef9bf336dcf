"""``bdc reproduce``: the paper's pipeline end to end at a chosen scale (see engine.reproduce)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--scale",
    type=click.Choice(["tiny", "small", "paper"]),
    default="tiny",
    show_default=True,
    help="tiny: CI, scripted agents and a tiny model; small: a 2-core CPU in ~2 h; paper: the paper's sizes.",
)
@click.option(
    "--out", "out", type=click.Path(file_okay=False), required=True, help="Folder for report.md, runs, artifacts."
)
@click.option("--agents", default=None, help="Comma-separated agents (default: the scale's, else the config file's).")
@click.option(
    "--base", default=None, help="Base model (default: a tiny random Llama at tiny scale, else the installed one)."
)
@click.option("--max-calls", type=int, default=None, help="LLM call budget per search run.")
@click.option("--max-cost", "max_cost_usd", type=float, default=None, help="USD budget per search run.")
@click.option(
    "--report-only",
    is_flag=True,
    help="Rewrite OUT/report.md from what is done so far (partial tables marked); run nothing.",
)
def reproduce(
    scale: str,
    out: str,
    agents: str | None,
    base: str | None,
    max_calls: int | None,
    max_cost_usd: float | None,
    report_only: bool,
) -> None:
    """Tables 1-3 of the paper at SCALE into OUT/report.md; run it again to resume."""
    from engine.agents.config import load_agents, parse_agent_arg, stored_agent
    from engine.reproduce.pipeline import Budgets, Reproduction
    from engine.reproduce.report import write_report
    from engine.reproduce.scales import SCALES
    from engine.training.base import resolve_base

    sc = SCALES[scale]
    names = [a.strip() for a in (agents or ",".join(sc.agents)).split(",") if a.strip()]
    specs = [parse_agent_arg(a) for a in names] if names else load_agents()
    folder = Path(out)
    if base is None and sc.tiny_base:
        from engine.training.tiny import make_tiny_llama

        tiny = folder / "tiny-base"
        base = str(tiny if (tiny / "config.json").is_file() else make_tiny_llama(tiny, hidden=32, layers=2, heads=2))
    base = resolve_base(base)
    rep = Reproduction(
        folder,
        sc,
        [stored_agent(s) for s in specs],  # a key stays a reference; a local model names its engine
        base,
        Budgets(max_calls, max_cost_usd),
        say=lambda m: click.echo(m, err=True),
    )
    names = [s.name for s in specs]
    if report_only:
        click.echo(f"wrote {write_report(folder, rep.results(), scale, names, base)}")
        return
    rep.after_step = lambda: write_report(folder, rep.results(), scale, names, base)  # a partial report as it goes
    path = write_report(folder, rep.run(), scale, names, base)
    click.echo(f"wrote {path}")
