"""``--backend ray`` on a local 2-node Ray cluster: the trees of the asyncio backend, a
killed search actor loses nothing, a crashed driver is resumed from the log.

Ray binds to the machine's routable address; where the network is loopback only that address
is unreachable, so this module re-executes itself in a network namespace of its own
(``unshare -n``, loopback up; needs root) where Ray uses 127.0.0.1. Ray's start-up dominates:
about 5 s for the cluster on an idle 2-core machine, 30-60 s for the whole module.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from engine.distributed.local import NETNS_ENV, LocalCluster, in_isolated_netns, netns_argv, netns_env  # noqa: E402
from engine.search import events as ev  # noqa: E402
from engine.search.config import RunConfig, SearchConfig  # noqa: E402
from engine.search.runner import create_search_run, execute_run  # noqa: E402
from engine.search.tree import TreeState  # noqa: E402
from engine.store import Store  # noqa: E402
from tests.search.helpers import ladder_problem  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
INSIDE = os.environ.get(NETNS_ENV) == "1" or in_isolated_netns()


if not INSIDE:

    @pytest.mark.timeout(900)
    def test_ray_backend_in_its_own_network_namespace():
        argv = netns_argv(
            [
                sys.executable,
                "-m",
                "pytest",
                str(Path(__file__).relative_to(ROOT)),
                "-q",
                "-x",
                "-p",
                "no:cacheprovider",
            ]
        )
        if argv is None:
            pytest.skip(
                "Ray needs a reachable address: run as root (unshare -n) or inside an isolated network "
                "namespace with loopback up"
            )
        proc = subprocess.run(argv, cwd=ROOT, env=netns_env(), capture_output=True, text=True, timeout=840)
        tail = proc.stdout[-6000:] + proc.stderr[-3000:]
        assert proc.returncode == 0, tail
        assert " passed" in proc.stdout and "skipped" not in proc.stdout, tail


@pytest.fixture(scope="module")
def cluster():
    if not INSIDE:
        pytest.skip("searched inside the network namespace by test_ray_backend_in_its_own_network_namespace")
    with LocalCluster(nodes=2, cpus=1) as c:
        yield c


def _cfg(**kw) -> RunConfig:
    agents = [{"name": "A", "model": "scripted:broken"}, {"name": "B", "model": "scripted:canonical"}]
    base = dict(
        dataset="synthetic",
        strategy="mcts",
        agents=agents,
        search=SearchConfig(rollouts=3, stop_on_solve=False),
        problem_concurrency=2,
        sandbox_workers=1,
    )
    return RunConfig(**{**base, **kw})


async def _folded(store: Store, run_id: str) -> tuple[dict, dict]:
    """(tree signature, event kinds in order) per problem, from the store alone."""
    events = await store.events(run_id)
    trees = {pid: t.signature() for pid, t in TreeState().apply_all(events).problems.items()}
    kinds: dict[str, list[str]] = {}
    for e in events:
        if e.problem_id is not None:
            kinds.setdefault(e.problem_id, []).append(e.kind)
    return trees, kinds


async def test_same_trees_as_the_asyncio_backend(cluster, tmp_path):
    from engine.distributed.backend import RayBackend

    probs = [ladder_problem(f"ladder/{i}") for i in range(3)]
    store = await Store.open(tmp_path / "bdc.db")
    try:
        local = await create_search_run(store, _cfg(), probs)
        await execute_run(store, local)
        backend = RayBackend()
        remote = await create_search_run(store, _cfg(), probs)
        await execute_run(store, remote, backend=backend)
        assert len(backend.actors) == 2 and len({n["NodeID"] for n in backend.nodes}) == 2
        (trees_l, kinds_l), (trees_r, kinds_r) = await _folded(store, local), await _folded(store, remote)
        assert trees_r == trees_l and sum(len(t) for t in trees_l.values()) > 3 * 3
        assert kinds_r == kinds_l  # every event, in order, once
        row = await store.run(remote)
        assert row.status == "finished" and row.totals["problems_done"] == 3 and row.totals["ac"] == 1.0
        assert len(await store.llm_calls(remote)) == len(await store.llm_calls(local)) > 0
        assert len(await store.sandbox_runs(remote)) == len(await store.sandbox_runs(local)) > 0
    finally:
        await store.close()


def _slow_policies():
    from tests.distributed.ray_driver import slow_policies

    return slow_policies()


_REFERENCE: dict[str, tuple[dict, dict]] = {}


async def _slow_reference(store: Store, cfg: RunConfig, probs) -> tuple[dict, dict]:
    """The asyncio backend's (trees, event kinds) for the slow policies (searched once per module)."""
    if "slow" not in _REFERENCE:
        run_id = await create_search_run(store, cfg, probs)
        await execute_run(store, run_id, policies=_slow_policies())
        _REFERENCE["slow"] = await _folded(store, run_id)
    return _REFERENCE["slow"]


async def test_a_killed_actor_loses_nothing(cluster, tmp_path):
    import ray

    from engine.distributed.backend import RayBackend

    probs = [ladder_problem(f"ladder/{i}") for i in range(4)]
    cfg = _cfg(search=SearchConfig(rollouts=4, stop_on_solve=False))
    store = await Store.open(tmp_path / "bdc.db")
    try:
        trees_l, kinds_l = await _slow_reference(store, cfg, probs)
        backend = RayBackend()
        remote = await create_search_run(store, cfg, probs)
        run = asyncio.create_task(execute_run(store, remote, policies=_slow_policies(), backend=backend))
        for _ in range(600):  # until both nodes are well into their problems
            await asyncio.sleep(0.1)
            await store.flush()
            kinds = (await _folded(store, remote))[1]
            if len(kinds) == 4 and all(len(k) >= 6 for k in kinds.values()):
                break
        assert not run.done(), "the run ended before the actor could be killed"
        ray.kill(backend.actors[0], no_restart=False)
        await asyncio.wait_for(run, 240)
        assert backend.retries >= 1
        trees_r, kinds_r = await _folded(store, remote)
        assert trees_r == trees_l
        assert kinds_r == kinds_l  # nothing lost, nothing written twice
        assert [e.kind for e in await store.events(remote, kinds=[ev.PROBLEM_FINISHED])] == [ev.PROBLEM_FINISHED] * 4
        assert (await store.run(remote)).status == "finished"
    finally:
        await store.close()


async def test_a_crashed_driver_is_resumed_from_the_log(cluster, tmp_path):
    """kill -9 the driver mid-run; `resume` on Ray gives the uninterrupted run's trees and events."""
    from engine.distributed.backend import RayBackend

    probs = [ladder_problem(f"ladder/{i}") for i in range(4)]
    cfg = _cfg(search=SearchConfig(rollouts=4, stop_on_solve=False))
    db = tmp_path / "bdc.db"
    store = await Store.open(db)
    try:
        trees_l, kinds_l = await _slow_reference(store, cfg, probs)
        remote = await create_search_run(store, cfg, probs)
        await store.flush()
        driver = subprocess.Popen(
            [sys.executable, "-m", "tests.distributed.ray_driver", str(db), remote, cluster.cluster.address],
            cwd=ROOT,
            env=netns_env(),
        )
        try:
            for _ in range(1200):
                await asyncio.sleep(0.1)
                kinds = (await _folded(store, remote))[1]
                if sum(len(k) for k in kinds.values()) >= 30:
                    break
                assert driver.poll() is None, "the driver ended before it could be killed"
            driver.kill()
        finally:
            driver.wait(30)
        await store.mark_dead_runs_interrupted()
        assert (await store.run(remote)).status == "interrupted"
        finished = await store.events(remote, kinds=[ev.PROBLEM_FINISHED])
        assert len(finished) < 4, "the driver was killed after the run's end"
        await execute_run(store, remote, policies=_slow_policies(), backend=RayBackend())
        trees_r, kinds_r = await _folded(store, remote)
        assert trees_r == trees_l and kinds_r == kinds_l
        assert (await store.run(remote)).status == "finished"
    finally:
        await store.close()


async def test_a_run_whose_calls_all_fail_stops_as_on_the_asyncio_backend(cluster, tmp_path):
    """The all-calls-failed rule is the runner's own (``record_result``): Ray stops the run with
    AgentsFailed after the first problem whose every LLM call failed, and ``resume`` retries it."""
    from engine.distributed.backend import RayBackend
    from engine.search.runner import AgentsFailed

    empty = tmp_path / "not-a-model"  # passes the preflight; loading it fails on every call
    empty.mkdir()
    cfg = _cfg(agents=[{"name": "broken", "model": f"local/{empty}"}], problem_concurrency=1)
    store = await Store.open(tmp_path / "bdc.db")
    try:
        run_id = await create_search_run(store, cfg, [ladder_problem(f"ladder/{i}") for i in range(6)])
        with pytest.raises(
            AgentsFailed, match=r"all \d+ LLM calls of problem ladder/\d failed .*cannot load local model"
        ):
            await execute_run(store, run_id, backend=RayBackend())
        row = await store.run(run_id)
        assert row.status == "failed" and row.error.startswith("AgentsFailed: all ")
        done = await store.events(run_id, kinds=[ev.PROBLEM_FINISHED])
        assert 1 <= len(done) < 6  # stopped early: the other problems were not all burnt
    finally:
        await store.close()


def test_bdc_search_backend_ray(cluster, tmp_path, bdc_home):
    from engine import logs
    from engine.cli import main

    db = tmp_path / "cli.db"
    args = [
        "--db",
        str(db),
        "search",
        "--dataset",
        "humaneval",
        "--limit",
        "2",
        "--agents",
        "scripted:canonical",
        "--rollouts",
        "1",
        "--sandbox-workers",
        "1",
        "--quiet",
        "--backend",
        "ray",
        "--address",
        cluster.cluster.address,
    ]
    try:
        main(args)
    except SystemExit as e:
        assert not e.code
    finally:
        logs.teardown()

    async def check():
        store = await Store.open(db)
        try:
            (row,) = await store.runs()
            assert row.status == "finished" and row.totals["problems_done"] == 2 and row.totals["ac"] == 1.0
        finally:
            await store.close()

    asyncio.run(check())


class _Rep:
    def __init__(self):
        self.events: list[dict] = []

    def __call__(self, event):
        self.events.append(event)

    def should_stop(self):
        return False


def test_train_experts_one_ray_task_per_expert(cluster, tmp_path):
    from engine.distributed.training import train_experts_on_ray
    from engine.errors import ConfigError
    from engine.training.tiny import make_tiny_llama
    from tests.training.test_expert_choice import write_build

    base = str(make_tiny_llama(tmp_path / "llama", hidden=32, layers=2, heads=2))
    data, out = write_build(tmp_path)
    config = {
        "mode": "experts",
        "data": str(data),
        "out": str(out),
        "base": base,
        "r": 4,
        "train": {"max_steps": 2, "batch_size": 4, "max_length": 64},
        "backend": "ray",
        "gpus_per_expert": 0,
    }
    with pytest.raises(ConfigError, match="each expert needs 1 GPU but the Ray cluster has 0"):
        train_experts_on_ray({**config, "gpus_per_expert": 1}, _Rep())
    rep = _Rep()
    res = train_experts_on_ray(config, rep)
    assert res["adapters"] == [str(out / "experts" / f"expert_{k}") for k in (0, 1)]
    for k in (0, 1):
        assert (out / "experts" / f"expert_{k}" / "adapter_config.json").is_file()
    assert rep.events[-1]["step"] == rep.events[-1]["total"] == 2
