"""Data-parallel training when launched by ``accelerate launch`` (or ``torchrun``).

``bdc train sft|hyper`` started as N processes (``accelerate launch --num_processes N -m
engine.cli train sft ...``) split every optimiser step of the shared loop
(``engine.training.loop``) between the processes: each takes every N-th micro-batch of the
step, and the trainable parameters' gradients are summed over the processes before the
optimiser steps (what DDP does, done explicitly because the loop weights each micro-batch by
its share of the step). Every process therefore makes the same update a single process makes
on the whole step, so the data order, the checkpoints and resume stay those of one process.
Only the main process writes checkpoints and artefacts; the others wait for it.

The process group is set up from the launcher's environment (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``...): NCCL with one GPU per process (``LOCAL_RANK``), gloo on CPUs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def launched_world() -> int:
    """How many processes the launcher started (1 when not launched)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


class DataParallel:
    """This process's share of a data-parallel run (a no-op for a single process)."""

    def __init__(self) -> None:
        self.world = launched_world()
        self.rank = 0
        if self.world > 1:
            import torch
            import torch.distributed as dist

            if not dist.is_initialized():  # the launcher's environment says where the others are
                if torch.cuda.is_available():
                    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
                dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, micro: Sequence[T]) -> list[T]:
        """This process's micro-batches of one optimiser step."""
        return list(micro[self.rank :: self.world])

    def sum_grads(self, params: Sequence[Any]) -> None:
        """Sum every trainable parameter's gradient over the processes (a process without a
        micro-batch this step contributes zeros)."""
        if self.world == 1:
            return
        import torch
        import torch.distributed as dist

        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)

    def sum(self, value: float) -> float:
        """``value`` summed over the processes."""
        if self.world == 1:
            return value
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(value)], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return float(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()


class QuietReporter:
    """The job reporter of a data-parallel worker process: the main process reports the job."""

    def __call__(self, event: dict[str, Any]) -> None:
        pass

    def should_stop(self) -> bool:
        return False
