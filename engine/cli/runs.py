"""``bdc runs``, ``bdc show``, ``bdc compare`` and ``bdc export``: read what searches stored."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import click

from engine.cli.console import make_console
from engine.cli.params import OutputFile, fraction


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):.2f}"


async def _open(db: str):
    from engine.store import Store

    return await Store.open(db)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also non-search runs.")
@click.pass_context
def runs(ctx: click.Context, show_all: bool) -> None:
    """List runs with status and live totals."""
    from rich.table import Table

    async def go() -> list:
        store = await _open(ctx.obj["db"])
        try:
            await store.mark_dead_runs_interrupted()
            return await store.runs(kind=None if show_all else "search")
        finally:
            await store.close()

    rows = asyncio.run(go())
    table = Table(title="runs")
    for col in (
        "id",
        "name",
        "status",
        "dataset",
        "strategy",
        "agents",
        "done",
        "solved",
        "PR",
        "AC",
        "calls",
        "cost",
        "created",
    ):
        table.add_column(col, justify="right" if col in ("done", "solved", "PR", "AC", "calls", "cost") else "left")
    for r in rows:
        t = r.totals or {}
        table.add_row(
            r.id,
            r.name or "",
            r.status,
            r.dataset or "",
            r.strategy or "",
            ",".join(r.agents),
            f"{t.get('problems_done', 0)}/{t.get('problems_total', '?')}",
            str(t.get("solved_public", "")),
            _pct(t.get("pr")),
            _pct(t.get("ac")),
            str(t.get("calls", "")),
            f"${t.get('cost', 0):.4f}",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
        )
    make_console().print(table)


async def _run_results(store: Any, run_id: str) -> tuple[Any, list[dict]]:
    row = await store.run(run_id)
    probs = await store.run_problems(row.id)
    return row, probs


@click.command()
@click.argument("run_id")
@click.pass_context
def show(ctx: click.Context, run_id: str) -> None:
    """One run: config, per-problem outcome and PR/AC per difficulty."""
    from rich.table import Table

    from engine.search.metrics import summarize

    async def go():
        store = await _open(ctx.obj["db"])
        try:
            return await _run_results(store, run_id)
        finally:
            await store.close()

    row, probs = asyncio.run(go())
    con = make_console()
    search = row.config.get("search", {})
    con.print(
        f"[bold]{row.id}[/bold] {row.name or ''}  status [bold]{row.status}[/bold]"
        + (f"  error: {row.error}" if row.error else "")
    )
    con.print(
        f"dataset {row.dataset}  subset {row.config.get('subset') or '(all)'}  strategy {row.strategy}  "
        f"agents {', '.join(row.agents)}"
    )
    con.print("search " + "  ".join(f"{k}={v}" for k, v in search.items()))
    table = Table(title="problems")
    for col in (
        "problem",
        "difficulty",
        "status",
        "public",
        "private",
        "AC",
        "policy",
        "rollouts",
        "nodes",
        "prunes",
        "refines",
        "calls",
        "cost",
        "wall s",
    ):
        table.add_column(col)
    results = []
    for p in probs:
        r = p["result"] or {}
        if p["result"]:
            results.append(r)
        table.add_row(
            p["problem_id"],
            p["difficulty"] or "",
            r.get("status", p["status"] or "pending"),
            _pct(r.get("public_pass_rate")) if r else "",
            _pct(r.get("private_pass_rate")) if r else "",
            ("-" if r.get("scored") is False else "yes" if r.get("passed_private") else "no") if r else "",
            r.get("policy") or "",
            str(r.get("rollouts", "")),
            str(r.get("nodes", "")),
            str(r.get("prunes", "")),
            str(r.get("refinements", "")),
            str(r.get("calls", "")),
            f"{r.get('cost', 0):.4f}" if r else "",
            f"{r.get('wall_s', 0):.1f}" if r else "",
        )
    con.print(table)
    m = summarize(results)
    mt = Table(title="PR / AC (%)")
    for col in ("difficulty", "n", "PR", "AC", "solved public", "calls", "tokens", "cost"):
        mt.add_column(col)
    for name, g in [*m["by_difficulty"].items(), ("overall", m["overall"])]:
        mt.add_row(
            name,
            str(g["n"]),
            _pct(g["pr"]),
            _pct(g["ac"]),
            str(g["solved_public"]),
            str(g["calls"]),
            str(g["tokens"]),
            f"${g['cost']:.4f}",
        )
    con.print(mt)
    if m["overall"]["unscored"]:
        con.print(
            f"{m['overall']['unscored']} problem(s) left out of PR/AC (no private tests apart from the "
            f"public ones): {', '.join(m['overall']['unscored_ids'])}"
        )


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.pass_context
def compare(ctx: click.Context, run_ids: tuple[str, ...]) -> None:
    """Runs side by side, laid out like the paper's Table 1 (PR and AC per difficulty)."""
    from rich.table import Table

    from engine.search.metrics import results_counting_unfinished, summarize

    async def go():
        store = await _open(ctx.obj["db"])
        try:
            return [await _run_results(store, r) for r in run_ids]
        finally:
            await store.close()

    data = asyncio.run(go())
    rows = []
    diffs: list[str] = []
    notes: list[str] = []
    for row, probs in data:
        results, unfinished = results_counting_unfinished(probs)
        m = summarize(results)
        rows.append((row, m))
        if unfinished:
            notes.append(f"{row.id}: {unfinished} of {len(probs)} problems unfinished, counted as not solved")
        if m["overall"]["unscored"]:
            notes.append(
                f"{row.id}: {m['overall']['unscored']} problem(s) left out of PR/AC (no private tests "
                "apart from the public ones)"
            )
        for d in m["by_difficulty"]:
            if d not in diffs:
                diffs.append(d)
    table = Table(title="System 2 knowledge exploration (PR / AC in %)")
    table.add_column("method")
    for d in [*diffs, "overall"]:
        table.add_column(f"{d} PR", justify="right")
        table.add_column(f"{d} AC", justify="right")
    for col in ("calls", "tokens", "cost", "wall s"):
        table.add_column(col, justify="right")
    for row, m in rows:
        cells = [f"{row.strategy} ({', '.join(row.agents)})\n{row.id}"]
        for d in diffs:
            g = m["by_difficulty"].get(d)
            cells += [_pct(g["pr"]), _pct(g["ac"])] if g else ["-", "-"]
        o = m["overall"]
        cells += [
            _pct(o["pr"]),
            _pct(o["ac"]),
            str(o["calls"]),
            str(o["tokens"]),
            f"${o['cost']:.4f}",
            f"{o['wall_s']:.1f}",
        ]
        table.add_row(*cells)
    con = make_console()
    con.print(table)
    for note in notes:
        con.print(note)


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--out", required=True, type=OutputFile(), help="File to write (JSONL, or parquet with --trees).")
@click.option(
    "--per-node",
    is_flag=True,
    help="Every simulated node's pairs (finer, not the paper's data) instead of one pair per solved problem.",
)
@click.option(
    "--min-pass-rate", type=fraction(), default=0.0, show_default=True, help="With --per-node: drop weaker pairs."
)
@click.option("--stage", type=click.Choice(["p2t", "t2s", "both"]), default="both", show_default=True)
@click.option(
    "--trees",
    is_flag=True,
    help="Export the whole trees (one row per problem, nodes nested: thoughts, "
    "reflections, prunes, refinements, solutions, verdicts, calls) plus a "
    "dataset card README.md beside OUT.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "jsonl"]),
    default=None,
    help="With --trees: file format (default: from OUT's suffix, .parquet or else jsonl).",
)
@click.pass_context
def export(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    out: str,
    per_node: bool,
    min_pass_rate: float,
    stage: str,
    trees: bool,
    fmt: str | None,
) -> None:
    """Write p2t / t2s training examples (input for `bdc cluster` / `bdc train`): by default the
    paper's D^{p2t}, D^{t2s}, one pair each per solved problem (full chain of thoughts, best code).
    With --trees, the whole search trees as a dataset (parquet or JSONL)."""
    from engine.search.export import examples_from_run, one_per_problem, per_node_examples
    from engine.training.examples import save_examples

    if trees:
        _export_trees(ctx.obj["db"], run_ids, out, fmt, per_node=per_node)
        return
    if fmt:
        raise click.UsageError("--format applies to --trees only (training examples are JSONL)")
    stages = ("p2t", "t2s") if stage == "both" else (stage,)

    async def go():
        store = await _open(ctx.obj["db"])
        try:
            out_ex, searched = [], set()
            for rid in run_ids:
                row = await store.run(rid)
                probs = {p["problem_id"]: p["problem"] for p in await store.run_problems(row.id)}
                searched |= set(probs)
                events = await store.events(row.id)
                if per_node:
                    out_ex += per_node_examples(row.id, events, probs, min_pass_rate=min_pass_rate, stages=stages)
                else:
                    out_ex += examples_from_run(row.id, events, probs, stages=stages)
            return (out_ex if per_node else one_per_problem(out_ex)), len(searched)
        finally:
            await store.close()

    examples, n_searched = asyncio.run(go())
    save_examples(examples, out)
    n_p2t = sum(1 for e in examples if e.stage == "p2t")
    solved = len({e.problem_id for e in examples})
    click.echo(
        f"wrote {len(examples)} examples ({n_p2t} p2t, {len(examples) - n_p2t} t2s) to {out}"
        + ("" if per_node else f" from {solved} solved of {n_searched} searched problems")
    )


def _export_trees(db: str, run_ids: tuple[str, ...], out: str, fmt: str | None, *, per_node: bool) -> None:
    from engine.errors import ConfigError
    from engine.search.export_trees import card_is_ours, card_path, read_trees, write_card, write_trees

    if per_node:
        raise click.UsageError("--per-node selects training pairs; --trees exports every node already")
    fmt = fmt or ("parquet" if str(out).endswith(".parquet") else "jsonl")
    if not card_is_ours(out):
        raise ConfigError(f"{card_path(out)} exists and was not written by bdc; export into another folder")

    async def go() -> list:
        store = await _open(db)
        try:
            return await read_trees(store, run_ids)
        finally:
            await store.close()

    rows = asyncio.run(go())
    write_trees(rows, out, fmt)
    card = write_card(rows, out, fmt)
    click.echo(f"wrote {len(rows)} trees ({sum(len(r['nodes']) for r in rows)} nodes) to {out} ({fmt}); card {card}")
