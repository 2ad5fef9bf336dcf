"""Search on a Ray cluster (the optional extra ``bdc[ray]``): ``bdc search --backend ray``.

The run's one store stays with the driver (the ``bdc search`` process). Problems fan out to
one ``SearchNode`` actor per Ray node; each runs the unchanged per-problem search
(``engine.search.strategy.solve_problem``) against its node's own sandbox pool and streams the
problem's events back in order; the driver writes them through the ordinary store API, so
the TUI follows a Ray run exactly like a local one. A ``RunServices`` actor holds the run's
one budget and reply cache. Modules:

* ``services``  the budget + cache actor and the budget a node's LLM client uses;
* ``actors``    the per-node search actor and the store it hands each problem;
* ``relay``     the driver's side of the streams (events into the store, cache misses);
* ``backend``   connecting to Ray, placing the actors, dispatch, retry of a dead actor's problems;
* ``local``     a local multi-node cluster and the network namespace Ray needs on this machine
                (tests and benchmarks).
"""

from __future__ import annotations

from engine.errors import ConfigError


def require_ray():
    """The ``ray`` module, or one clear line saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--backend ray needs Ray: pip install 'bdc[ray]'") from e
    return ray
