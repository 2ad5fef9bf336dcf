"""A Ray cluster of several nodes on this one machine, and the network namespace it needs.

Tests and ``bench/scale_out.py`` simulate a cluster with ``ray.cluster_utils.Cluster`` (one
raylet per simulated node, each with a small object store). On a Linux host with a routable
interface Ray binds to that interface's address; on a machine whose network is loopback only
that address is unreachable, so these run inside a network namespace of their own
(``unshare -n`` as root, loopback up), where Ray uses 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

NODE_OBJECT_STORE_BYTES = 80 * 2**20  # the smallest Ray accepts is 75 MiB
NETNS_ENV = "BDC_RAY_NETNS"  # set in the re-executed child


def in_isolated_netns() -> bool:
    """Whether this process sees no network interface but loopback."""
    try:  # /proc/self/net is this process's namespace (/sys/class/net is the one sysfs was mounted in)
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return {ln.split(":", 1)[0].strip() for ln in lines} <= {"lo"}


def netns_argv(argv: list[str]) -> list[str] | None:
    """``argv`` run in a fresh network namespace with loopback up, or None when this process
    cannot make one (not root, or no ``unshare``/``ip``)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return None
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def netns_env() -> dict[str, str]:
    """The environment of a re-executed child: this one, Ray's auth off, marked as the child."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        NETNS_ENV: "1",
        "RAY_AUTH_MODE": "disabled",
        "PYTHONPATH": root + (os.pathsep + path if path else ""),
    }


class LocalCluster:
    """``nodes`` simulated Ray nodes with ``cpus`` CPUs and a small object store each, and this
    process connected to them; ``startup_s`` is what that cost."""

    def __init__(self, nodes: int = 2, cpus: int = 1, object_store_bytes: int = NODE_OBJECT_STORE_BYTES) -> None:
        self.n_nodes, self.cpus, self.object_store_bytes = nodes, cpus, object_store_bytes
        self.cluster: Any = None
        self.startup_s = 0.0

    def __enter__(self) -> LocalCluster:
        import logging

        import ray
        from ray.cluster_utils import Cluster

        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        t0 = time.perf_counter()
        args = {"num_cpus": self.cpus, "object_store_memory": self.object_store_bytes}
        self.cluster = Cluster(initialize_head=True, head_node_args={**args, "include_dashboard": False})
        try:
            for _ in range(self.n_nodes - 1):
                self.cluster.add_node(**args)
            ray.init(address=self.cluster.address, log_to_driver=False, logging_level=logging.WARNING)
            self.cluster.wait_for_nodes()
        except BaseException:
            self.cluster.shutdown()
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def add_node(self) -> Any:
        node = self.cluster.add_node(num_cpus=self.cpus, object_store_memory=self.object_store_bytes)
        self.cluster.wait_for_nodes()
        return node

    def __exit__(self, *exc: object) -> None:
        import ray

        ray.shutdown()
        self.cluster.shutdown()
