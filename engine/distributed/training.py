"""``bdc train experts --backend ray``: one Ray task per expert, each on a GPU of its own.

Experts are independent (paper eq. 13), so each is the job ``bdc train experts --expert K``
run as a Ray task reserving ``gpus_per_expert`` GPUs (Ray sets ``CUDA_VISIBLE_DEVICES``, so the
task sees only its GPU). Every task writes ``OUT/experts/expert_<k>``: OUT must be a folder
every node sees at the same path (a shared disk), as the later ``bdc train hyper`` reads them
all. A task that dies is retried by Ray and resumes from the expert's checkpoint.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from engine.errors import BdcError, ConfigError

POLL_S = 2.0
TASK_RETRIES = 2


def train_one_expert(config: dict[str, Any]) -> dict[str, Any]:
    """The body of one expert's Ray task: the ordinary ``train`` job for that expert alone."""
    from engine.jobs.kinds import run_train
    from engine.training.ddp import QuietReporter

    res = run_train(config, QuietReporter())  # the driver's job reports the experts' progress
    return {**res, "host": socket.gethostname()}


def train_experts_on_ray(config: dict[str, Any], rep: Any) -> dict[str, Any]:
    """Train the chosen experts (all by default) as parallel Ray tasks; the job's result."""
    from engine.distributed.backend import RayBackend
    from engine.training.clustering import load_result

    out = Path(config["out"])
    k = int(load_result(config.get("clusters") or out)["k"])
    experts = [int(e) for e in (config.get("experts") or range(k))]
    bad = [e for e in experts if not 0 <= e < k]
    if bad:
        raise ConfigError(f"--expert {bad[0]}: the clustering has {k} experts (0..{k - 1})")
    gpus = float(config.get("gpus_per_expert", 1.0))
    backend = RayBackend(config.get("address"))
    try:
        return _train(backend.connect(), config, experts, gpus, rep)
    finally:
        backend.shutdown()


def _train(ray: Any, config: dict[str, Any], experts: list[int], gpus: float, rep: Any) -> dict[str, Any]:
    have = float(ray.cluster_resources().get("GPU", 0.0))
    if gpus > have:
        raise ConfigError(
            f"each expert needs {gpus:g} GPU but the Ray cluster has {have:g}: "
            "add GPU nodes, or --gpus-per-expert 0 to train on CPUs"
        )
    task = ray.remote(num_gpus=gpus, max_retries=TASK_RETRIES)(train_one_expert)
    base = {key: v for key, v in config.items() if key not in ("backend", "address", "gpus_per_expert")}
    refs = {task.remote({**base, "experts": [e]}): e for e in experts}
    pending, results = list(refs), {}
    while pending:
        done, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
        for ref in done:
            try:
                results[refs[ref]] = ray.get(ref)
            except ray.exceptions.RayTaskError as e:
                for r in pending:
                    ray.cancel(r, force=True)
                cause = getattr(e, "cause", None)
                raise (cause if isinstance(cause, BdcError) else BdcError(f"expert {refs[ref]}: {e}")) from e
        rep({"event": "progress", "adapter": "experts", "step": len(results), "total": len(experts)})
        if rep.should_stop():
            for r in pending:
                ray.cancel(r, force=True)
            break
    adapters = [a for e in sorted(results) for a in results[e]["adapters"]]
    return {"mode": "experts", "adapters": adapters, "hosts": {str(e): results[e]["host"] for e in sorted(results)}}
