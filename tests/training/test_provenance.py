"""The trained-on record survives experts of one folder training at the same time."""

from __future__ import annotations

import json
import multiprocessing as mp
from types import SimpleNamespace

from engine.training.provenance import TRAINED_ON, record_trained_problems, trained_problems


def _writer(out: str, k: int) -> None:
    for i in range(20):
        ex = SimpleNamespace(problem_id=f"p{k}-{i}", problem_digest=f"d{k}-{i}")
        record_trained_problems(out, [ex], f"src{k}")


def test_parallel_writers_lose_no_problem(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = trained_problems([tmp_path])
    assert got == {f"p{k}-{i}": f"d{k}-{i}" for k in range(4) for i in range(20)}
    rec = json.loads((tmp_path / TRAINED_ON).read_text())
    assert sorted(rec["sources"]) == ["src0", "src1", "src2", "src3"]
    assert not list(tmp_path.glob("*.tmp"))
