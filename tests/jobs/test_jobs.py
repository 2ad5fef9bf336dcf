"""Jobs: CLI training/eval commands recorded in the store, detached launch, cancel, resume."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from engine.jobs import cancel, launch_job
from engine.store import Store


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    from engine.training.tiny import make_tiny_llama

    return str(make_tiny_llama(tmp_path_factory.mktemp("tiny") / "llama", hidden=32, layers=2, heads=2))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Two visibly different families of training examples (strings vs arithmetic)."""
    rows = []
    for i in range(8):
        rows.append(
            {
                "stage": "t2s",
                "input": f"Reverse the string number {i}.",
                "output": f"def f(s):\n    return s[::-{i % 2 + 1}]",
                "pass_rate": 1.0,
                "run_id": "r",
                "node_id": str(i),
                "problem_id": f"s{i}",
            }
        )
        rows.append(
            {
                "stage": "t2s",
                "input": f"Add {i} to a number.",
                "output": f"def g(x):\n    return x + {i}",
                "pass_rate": 1.0,
                "run_id": "r",
                "node_id": str(100 + i),
                "problem_id": f"a{i}",
            }
        )
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def _invoke(db: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def _jobs(db: Path) -> list:
    async with await Store.open(db) as store:
        return await store.jobs()


def test_disenlora_pipeline_from_the_cli_is_recorded_as_jobs(
    tmp_path: Path, tiny_base: str, data: Path, bdc_home: Path
) -> None:
    db, out = tmp_path / "bdc.db", tmp_path / "art"
    _invoke(db, "cluster", str(data), "--k", "2", "--out", str(out))
    clusters = json.loads((out / "clusters.json").read_text())
    assert clusters["k"] == 2 and sum(clusters["sizes"]) == 16
    _invoke(db, "train", "experts", str(data), "--out", str(out), "--base", tiny_base, "--max-steps", "2", "--r", "4")
    assert (out / "experts" / "expert_1" / "adapter_config.json").is_file()
    _invoke(db, "train", "hyper", str(data), "--out", str(out), "--base", tiny_base, "--max-steps", "2")
    _invoke(db, "train", "merge", "--out", str(out), "--base", tiny_base, "--method", "linear")
    output = _invoke(
        db,
        "eval",
        "--solver",
        "base",
        "--solver",
        "disenlora",
        "--artifacts",
        str(out),
        "--base",
        tiny_base,
        "--limit",
        "1",
        "--max-new-tokens",
        "4",
    )
    assert "DisenLoRA" in output and "humaneval" in output

    jobs = {j.kind + ":" + (j.config.get("mode") or ""): j for j in asyncio.run(_jobs(db))}
    assert set(jobs) == {"cluster:", "train:experts", "train:hyper", "train:merge", "eval:"}
    assert all(j.status == "finished" and j.progress == 1.0 for j in jobs.values())
    assert jobs["cluster:"].result["k"] == 2 and len(jobs["cluster:"].result["points"]) == 16
    rows = jobs["eval:"].result["rows"]
    assert {r["solver"] for r in rows} == {"w/o tuning", "DisenLoRA"} and all(r["n"] == 1 for r in rows)

    async def losses() -> list:
        async with await Store.open(db) as store:
            return await store.metrics(jobs["train:experts"].id, "loss")

    assert len(asyncio.run(losses())) == 4  # 2 experts x 2 steps


def test_failed_job_keeps_a_clear_error(tmp_path: Path, data: Path, bdc_home: Path) -> None:
    db = tmp_path / "bdc.db"
    result = CliRunner().invoke(
        cli, ["--db", str(db), "train", "merge", "--out", str(tmp_path / "none"), "--base", str(tmp_path)]
    )
    assert result.exit_code != 0
    [job] = asyncio.run(_jobs(db))
    assert job.status == "failed" and job.error


def test_detached_job_can_be_cancelled_and_resumed(tmp_path: Path, tiny_base: str, data: Path, bdc_home: Path) -> None:
    db, out = tmp_path / "bdc.db", tmp_path / "art"

    async def create() -> str:
        async with await Store.open(db) as store:
            return await store.create_job(
                "train",
                {
                    "mode": "sft",
                    "data": str(data),
                    "out": str(out),
                    "base": tiny_base,
                    "r": 4,
                    "train": {"epochs": 8, "max_steps": 120, "batch_size": 1, "checkpoint_every": 1},
                },
            )

    job_id = asyncio.run(create())
    pid = launch_job(db, job_id)

    async def wait_for(predicate, timeout: float = 120.0):
        deadline = time.monotonic() + timeout
        async with await Store.open(db, readonly=True) as store:
            while time.monotonic() < deadline:
                job = await store.job(job_id)
                if predicate(job):
                    return job
                await asyncio.sleep(0.2)
        raise AssertionError(f"job never reached the state; last: {job}")

    asyncio.run(wait_for(lambda j: j.status == "running" and j.progress > 0.005))
    assert cancel(pid)
    job = asyncio.run(wait_for(lambda j: j.status in ("cancelled", "failed", "finished")))
    assert job.status == "cancelled", job.error
    stopped_at = job.progress
    assert 0 < stopped_at < 1

    pid = launch_job(db, job_id)  # same job again: resumes from the checkpoint
    job = asyncio.run(wait_for(lambda j: j.status in ("finished", "failed"), timeout=300))
    assert job.status == "finished", job.error
    assert job.result["step"] == job.result["total"] == 120

    async def loss_steps() -> list[int]:
        async with await Store.open(db) as store:
            return [m["step"] for m in await store.metrics(job_id, "loss")]

    steps = asyncio.run(loss_steps())
    # every step once: the resumed process continued where the cancelled one stopped
    assert sorted(set(steps)) == list(range(1, 121)) and len(steps) == len(set(steps))
