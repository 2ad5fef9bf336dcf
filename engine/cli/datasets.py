"""``bdc datasets list|show``: what problems are available and what one looks like."""

from __future__ import annotations

from collections import Counter

import click
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from engine.cli.console import make_console
from engine.errors import DatasetError
from engine.problems import DATASETS, Problem, load_dataset, resolve_path


@click.group()
def datasets() -> None:
    """List the datasets and inspect their problems."""


@datasets.command("list")
def list_() -> None:
    """Each dataset with its problem count and where it comes from."""
    table = Table(title="Datasets")
    for col in ("name", "problems", "difficulties", "source"):
        table.add_column(col)
    for name, ds in DATASETS.items():
        path = resolve_path(name)
        if path is None:
            count, source = "-", f"[dim]needs --path ({', '.join(ds.file_names[:2])})[/dim]"
        else:
            try:
                count, source = str(len(load_dataset(name, path))), str(path)
            except DatasetError as e:
                count, source = "!", f"[red]{e}[/red]"
        table.add_row(name, count, ", ".join(ds.difficulties), f"{ds.description}\n{source}")
    make_console().print(table)


@datasets.command("show")
@click.argument("name")
@click.argument("problem_id", required=False)
@click.option(
    "--path",
    default=None,
    help="Read this file, folder of parquet shards or glob instead of the default (as `bdc search --path`).",
)
@click.option("--skip-bad", is_flag=True, help="Skip malformed rows with a warning instead of stopping.")
def show(name: str, problem_id: str | None, path: str | None, skip_bad: bool) -> None:
    """A summary of dataset NAME, or PROBLEM_ID in full."""
    con = make_console()
    problems = load_dataset(name, path, skip_bad=skip_bad, warn=lambda m: con.print(f"[yellow]warning:[/] {m}"))
    if problem_id is None:
        _summary(con, name, problems)
        return
    matches = [p for p in problems if p.id == problem_id or p.id.endswith("/" + problem_id)]
    if not matches:
        raise DatasetError(f"no problem {problem_id!r} in {name} ({len(problems)} problems; e.g. {problems[0].id!r})")
    _problem(con, matches[0])


def _summary(console: Console, name: str, problems: list[Problem]) -> None:
    table = Table(title=f"{name}: {len(problems)} problems")
    for col in ("difficulty", "problems", "public tests", "private tests", "with solutions"):
        table.add_column(col, justify="right" if col != "difficulty" else "left")
    by = Counter(p.difficulty for p in problems)
    for level, count in sorted(by.items()):
        group = [p for p in problems if p.difficulty == level]
        table.add_row(
            level,
            str(count),
            str(sum(len(p.public_tests) for p in group)),
            str(sum(len(p.private_tests) for p in group)),
            str(sum(1 for p in group if p.solutions)),
        )
    console.print(table)
    styles = Counter(p.style.value for p in problems)
    console.print("test styles: " + ", ".join(f"{k} {v}" for k, v in styles.items()))
    console.print(f"first ids: {', '.join(p.id for p in problems[:5])}")


def _problem(console: Console, p: Problem) -> None:
    console.print(Panel(Text(p.statement.strip()), title=f"{p.id} · {p.dataset} · {p.difficulty} · {p.style.value}"))
    for label, tests in (("public", p.public_tests), ("private", p.private_tests)):
        table = Table(title=f"{label} tests ({len(tests)})", show_lines=True)
        table.add_column("input", overflow="fold")
        table.add_column("expected", overflow="fold")
        for t in tests[:5]:
            table.add_row(Text(t.input[:400]), Text(t.output[:200]))
        if len(tests) > 5:
            table.add_row(f"... {len(tests) - 5} more", "")
        console.print(table)
    if p.solutions:
        console.print(Panel(Syntax(p.solutions[0], "python"), title=f"reference solution (1 of {len(p.solutions)})"))
