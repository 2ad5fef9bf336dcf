"""``bdc search`` and ``bdc resume``: run MC-Tree-Of-Agents (or a baseline) headless."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import click

from engine.cli.params import FiniteFloat, fraction, non_negative, positive_int

log = logging.getLogger(__name__)


def _agents(values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(a.strip() for a in v.split(",") if a.strip())
    return out


def backend_options(f: Any) -> Any:
    """--backend and --address, shared by `bdc search` and `bdc resume`."""
    f = click.option(
        "--address",
        default=None,
        help="With --backend ray: 'auto' (the cluster this machine is in) or 'ray://HEAD:10001'; "
        "default: start Ray on this machine.",
    )(f)
    return click.option(
        "--backend",
        type=click.Choice(["asyncio", "ray"]),
        default="asyncio",
        show_default=True,
        help="Where problems are searched: this process, or actors on a Ray cluster "
        "(pip install 'bdc[ray]'; concurrency and sandbox options are then per node).",
    )(f)


@click.command()
@click.option("--dataset", required=True, help="humaneval, mbpp, apps, codecontests (see `bdc datasets list`).")
@click.option("--path", "dataset_path", default=None, help="Dataset file or folder (default: its usual place).")
@click.option(
    "--strategy",
    default="mcts",
    show_default=True,
    help="mcts, mcts-single, mcts-noprune, mcts-norefine, zero-shot, reflexion, tot, lats, rethinkmcts "
    "(single-model strategies run once per agent).",
)
@click.option(
    "--agents",
    "agents",
    multiple=True,
    help="Comma-separated agents: [name=]provider/model[@temp], local/<name>, scripted:canonical, "
    "scripted:broken. Default: the config file's agents.",
)
@click.option("--preset", default=None, help="An agent preset from the config instead of --agents.")
@click.option("--rollouts", type=positive_int(), default=16, show_default=True)
@click.option(
    "--thoughts",
    "thoughts_per_policy",
    type=positive_int(),
    default=3,
    show_default=True,
    help="Thoughts per policy per expansion.",
)
@click.option("--max-depth", type=positive_int(), default=4, show_default=True)
@click.option(
    "--thought-tokens",
    type=positive_int(),
    default=None,
    help="Token budget of a thought call (default 128, or [search] thought_tokens in the config).",
)
@click.option(
    "--solution-tokens", type=positive_int(), default=None, help="Token budget of a solution call (default 512)."
)
@click.option(
    "--reflection-tokens", type=positive_int(), default=None, help="Token budget of a reflection call (default 192)."
)
@click.option(
    "--refinement-tokens", type=positive_int(), default=None, help="Token budget of a refinement call (default 96)."
)
@click.option("--gamma", type=fraction(), default=0.9, show_default=True)
@click.option("--c-puct", type=non_negative(), default=4.0, show_default=True)
@click.option("--c-base", type=FiniteFloat(min=0, min_open=True), default=10.0, show_default=True)
@click.option(
    "--refine-limit", type=click.IntRange(min=0), default=6, show_default=True, help="Refinements per problem."
)
@click.option("--refine-limit-per-node", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--keep-exploring", is_flag=True, help="Do not stop a problem when a solution passes every public test.")
@click.option("--limit", type=positive_int(), default=None, help="First N problems of the subset.")
@click.option("--difficulty", default=None, help="Only this difficulty (comma-separated for several).")
@click.option("--start", type=click.IntRange(min=0), default=None)
@click.option("--end", type=click.IntRange(min=0), default=None)
@click.option("--sample", type=positive_int(), default=None, help="A seeded random sample of N problems.")
@click.option("--seed", type=int, default=0)
@click.option("--llm-concurrency", type=positive_int(), default=8, show_default=True, help="LLM calls in flight.")
@click.option("--sandbox-workers", type=positive_int(), default=2, show_default=True)
@click.option("--problem-concurrency", type=positive_int(), default=8, show_default=True)
@click.option("--sequential", is_flag=True, help="One call and one problem at a time (as the anchors run).")
@click.option("--max-calls", type=positive_int(), default=None)
@click.option("--max-tokens", type=positive_int(), default=None)
@click.option("--max-cost", "max_cost_usd", type=non_negative(), default=None, help="Budget in USD.")
@click.option("--name", default=None, help="A label for the run.")
@click.option("--quiet", is_flag=True, help="No live display.")
@backend_options
@click.pass_context
def search(ctx: click.Context, **kw: Any) -> None:
    """Search a dataset subset and score the chosen solutions (PR / AC on private tests)."""
    from engine.agents.config import load_agents, parse_agent_arg, stored_agent
    from engine.search.config import RunConfig, SearchConfig, call_budget_settings

    agents = _agents(kw["agents"])
    if agents:
        specs = [parse_agent_arg(a) for a in agents]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise click.BadParameter("agent names must be unique (use name=model)", param_hint="--agents")
    else:
        specs = load_agents(preset=kw["preset"])
    subset = {k: kw[k] for k in ("limit", "start", "end", "sample") if kw[k] is not None}
    if kw["difficulty"]:
        subset["difficulty"] = kw["difficulty"].split(",") if "," in kw["difficulty"] else kw["difficulty"]
    if kw["sample"] is not None:
        subset["seed"] = kw["seed"]
    cfg = RunConfig(
        dataset=kw["dataset"],
        dataset_path=kw["dataset_path"],
        strategy=kw["strategy"],
        agents=[stored_agent(s) for s in specs],
        subset=subset,  # keys stay in the config file
        search=SearchConfig(
            rollouts=kw["rollouts"],
            thoughts_per_policy=kw["thoughts_per_policy"],
            max_depth=kw["max_depth"],
            gamma=kw["gamma"],
            c_puct=kw["c_puct"],
            c_base=kw["c_base"],
            refine_limit=kw["refine_limit"],
            refine_limit_per_node=kw["refine_limit_per_node"],
            stop_on_solve=not kw["keep_exploring"],
            **call_budget_settings(
                **{k: kw[k] for k in ("thought_tokens", "solution_tokens", "reflection_tokens", "refinement_tokens")}
            ),
        ),
        llm_concurrency=kw["llm_concurrency"],
        sandbox_workers=kw["sandbox_workers"],
        problem_concurrency=kw["problem_concurrency"],
        sequential=kw["sequential"],
        max_calls=kw["max_calls"],
        max_tokens=kw["max_tokens"],
        max_cost_usd=kw["max_cost_usd"],
    )
    asyncio_run(_search_per_model(ctx.obj["db"], cfg, kw["name"], kw["quiet"], _backend(kw["backend"], kw["address"])))


async def _search_per_model(db: str, cfg: Any, name: str | None, quiet: bool, backend: Any = None) -> None:
    """A single-model strategy (the baselines, mcts-single) given several agents runs once per
    agent: one row per model, as in the paper, never a best-of-N across models."""
    from dataclasses import replace

    from engine.search.registry import agent_groups

    groups = agent_groups(cfg.strategy, cfg.agents)
    if len(groups) == 1:
        await _search(db, cfg, name, quiet, backend)
        return
    click.echo(
        f"{cfg.strategy} is a single-model method: one run per agent ({', '.join(a['name'] for a in cfg.agents)})"
    )
    for (agent,) in groups:
        await _search(db, replace(cfg, agents=[agent]), f"{name} ({agent['name']})" if name else None, quiet, backend)


@click.command()
@click.argument("run_id")
@click.option("--quiet", is_flag=True, help="No live display.")
@backend_options
@click.pass_context
def resume(ctx: click.Context, run_id: str, quiet: bool, backend: str, address: str | None) -> None:
    """Continue an interrupted, cancelled or failed run from its events (cached replies are free).
    Problems that crashed, or whose every LLM call failed, are searched again from the start."""
    asyncio_run(_resume(ctx.obj["db"], run_id, quiet, _backend(backend, address)))


def _backend(name: str, address: str | None) -> Any:
    """None for the asyncio runner, else the Ray backend (one clear line when Ray is missing)."""
    if name != "ray":
        if address is not None:
            raise click.BadParameter("only with --backend ray", param_hint="--address")
        return None
    from engine.distributed import require_ray
    from engine.distributed.backend import RayBackend

    require_ray()
    return RayBackend(address)


def asyncio_run(coro: Any) -> None:
    try:
        asyncio.run(coro)
    except (asyncio.CancelledError, KeyboardInterrupt):
        click.echo("cancelled: the run can be continued with `bdc resume`", err=True)
        raise SystemExit(130) from None


async def _search(db: str, cfg: Any, name: str | None, quiet: bool, backend: Any = None) -> None:
    from engine.logs import log_dir, log_file
    from engine.search.runner import create_search_run
    from engine.store import Store

    store = await Store.open(db)
    try:
        run_id = await create_search_run(store, cfg, name=name)
        click.echo(f"run {run_id}: {cfg.strategy} on {cfg.dataset} with {', '.join(a['name'] for a in cfg.agents)}")
        with log_file(log_dir(db) / f"{run_id}.log"):
            await _execute(store, run_id, quiet, backend)
    finally:
        await store.close()
        if backend is not None:
            backend.shutdown()


async def _resume(db: str, run_id: str, quiet: bool, backend: Any = None) -> None:
    from engine.errors import StoreError
    from engine.logs import log_dir, log_file
    from engine.store import Store, pid_alive

    store = await Store.open(db)
    try:
        await store.mark_dead_runs_interrupted()
        row = await store.run(run_id)
        if row.status == "running" and pid_alive(row.pid):
            raise StoreError(f"run {row.id} is still running (pid {row.pid} on {row.host})")
        if row.kind != "search":
            raise StoreError(f"run {row.id} is a {row.kind} run, not a search")
        click.echo(f"resuming run {row.id} ({row.status}): {row.strategy} on {row.dataset}")
        with log_file(log_dir(db) / f"{row.id}.log"):
            await _execute(store, row.id, quiet, backend)
    finally:
        await store.close()
        if backend is not None:
            backend.shutdown()


async def _execute(store: Any, run_id: str, quiet: bool, backend: Any = None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from engine.cli.console import make_console
    from engine.search.runner import execute_run

    console = make_console(stderr=True)
    total = len(await store.run_problems(run_id))
    log.info("run %s: executing %d problems", run_id, total)
    if quiet or not console.is_terminal:
        await execute_run(store, run_id, backend=backend)
    else:
        with Progress(
            TextColumn("[bold]search"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("[cyan]{task.fields[call]}"),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("search", total=total, info="", call="")

            def update(t: dict[str, Any]) -> None:
                info = (
                    f"active {t['active']}  solved {t['solved_public']}  PR {100 * t['pr']:.1f}  "
                    f"AC {100 * t['ac']:.1f}  calls {t['calls']} (+{t['cached']} cached)  ${t['cost']:.4f}"
                )
                progress.update(task, completed=t["problems_done"], info=info)

            watcher = asyncio.create_task(
                _show_calls_in_flight(store, run_id, lambda line: progress.update(task, call=line))
            )
            try:
                await execute_run(store, run_id, on_progress=update, backend=backend)
            finally:
                watcher.cancel()
    row = await store.run(run_id)
    t = row.totals
    log.info("run %s %s: totals %s", row.id, row.status, t)
    click.echo(
        f"run {row.id} {row.status}: {t.get('problems_done', 0)}/{t.get('problems_total', total)} problems, "
        f"PR {100 * t.get('pr', 0):.2f}  AC {100 * t.get('ac', 0):.2f}  calls {t.get('calls', 0)}  "
        f"tokens {t.get('tokens', 0)}  cost ${t.get('cost', 0):.4f}  wall {t.get('wall_s', 0):.1f}s"
    )
    click.echo(unscored_line(await store.run_problems(run_id)) or "", nl=False)


async def _show_calls_in_flight(store: Any, run_id: str, show: Callable[[str], None], every_s: float = 1.0) -> None:
    """Once a second: the oldest LLM call in flight and its token count so far ("" when none)."""
    from engine.store.call_progress import calls_in_flight, describe

    while True:
        try:
            calls = await calls_in_flight(store, run_id)
        except Exception as e:  # noqa: BLE001 - the progress line must never stop the run
            log.debug("calls in flight unreadable: %s", e)
            calls = []
        show(("⋯ " + describe(calls[0]) + (f" (+{len(calls) - 1})" if len(calls) > 1 else "")) if calls else "")
        await asyncio.sleep(every_s)


def unscored_line(problems: list[dict[str, Any]]) -> str:
    """The problems left out of PR/AC (no private test apart from the public ones), counted
    and listed, or "" when there are none."""
    ids = [str(p["problem_id"]) for p in problems if (p.get("result") or {}).get("scored") is False]
    if not ids:
        return ""
    shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
    return f"{len(ids)} problem(s) left out of PR/AC (no private tests apart from the public ones): {shown}\n"
