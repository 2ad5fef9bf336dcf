"""``bdc jobs``: list, run (or resume) and cancel background jobs (cluster, train, eval)."""

from __future__ import annotations

import asyncio
import datetime as dt

import click
from rich.table import Table

from engine.cli.console import make_console
from engine.errors import BdcError
from engine.store import Store


@click.group(invoke_without_command=True)
@click.pass_context
def jobs(ctx: click.Context) -> None:
    """Background jobs in the run store (without a subcommand: list them)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_)


@jobs.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """Every job with its status and progress."""

    async def go() -> list:
        async with await Store.open(ctx.obj["db"]) as store:
            await store.mark_dead_runs_interrupted()
            return await store.jobs()

    rows = asyncio.run(go())
    table = Table(title=f"Jobs in {ctx.obj['db']}")
    for col in ("id", "kind", "status", "progress", "message", "created"):
        table.add_column(col)
    for j in rows:
        created = dt.datetime.fromtimestamp(j.created_at).strftime("%Y-%m-%d %H:%M")
        msg = j.error.splitlines()[0] if j.error else (j.message or "")
        table.add_row(j.id, j.kind, j.status, f"{100 * j.progress:.0f}%", msg[:60], created)
    make_console().print(table)


@jobs.command("run")
@click.argument("job_id")
@click.pass_context
def run(ctx: click.Context, job_id: str) -> None:
    """Run or resume JOB_ID in this process (the TUI launches jobs this way)."""
    from engine.jobs.runner import execute_job

    async def go() -> tuple[str, object]:
        async with await Store.open(ctx.obj["db"]) as store:
            return await execute_job(store, job_id, echo=lambda e: None)

    status, result = asyncio.run(go())
    click.echo(f"job {job_id}: {status}")
    if status == "failed":
        raise BdcError(f"job {job_id} failed: {result}")


@jobs.command("cancel")
@click.argument("job_id")
@click.pass_context
def cancel_cmd(ctx: click.Context, job_id: str) -> None:
    """Ask a running job to stop at its next checkpoint."""
    from engine.jobs import cancel

    async def go():
        async with await Store.open(ctx.obj["db"]) as store:
            return await store.job(job_id)

    job = asyncio.run(go())
    if job is None:
        raise BdcError(f"no job {job_id!r}")
    if job.status != "running" or not cancel(job.pid):
        raise BdcError(f"job {job_id} is not running (status {job.status})")
    click.echo(f"asked job {job_id} (pid {job.pid}) to stop")
