"""Bridge between a blocking worker (training, clustering, evaluation in a thread) and the
store: progress dicts become job progress, a message and metric points; SIGTERM or a
cancel request becomes ``should_stop()``.

Training code stays store-free: it only calls ``progress(dict)`` and ``should_stop()``.
Progress dicts follow engine/training/loop.py: ``{"event": "progress", "step", "total",
"loss", "lr", "tokens_per_s", "eta_s", ...}``; other events (``checkpoint``, ``resumed``,
``done``, phases of clustering) become the job message.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from engine.store import Store

METRIC_KEYS = ("loss", "lr", "tokens_per_s", "eta_s")


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f" · ETA {h:d}:{m:02d}:{s:02d}" if h else f" · ETA {m:d}:{s:02d}"


class JobReporter:
    """Thread-safe progress callback bound to one job of one store."""

    def __init__(
        self,
        store: Store,
        job_id: str,
        loop: asyncio.AbstractEventLoop,
        echo: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.echo = echo
        self.job_id = job_id
        self.loop = loop
        self.stop_event = threading.Event()
        self.last: dict[str, Any] = {}
        self.progress = 0.0

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    def __call__(self, event: dict[str, Any]) -> None:
        """Called from the worker thread; hands the write to the event loop."""
        if self.echo is not None:
            self.echo(event)
        self.loop.call_soon_threadsafe(self._record, dict(event))

    def _record(self, e: dict[str, Any]) -> None:
        self.last = e
        kind = e.get("event", e.get("phase", "progress"))
        prefix = " ".join(f"{k} {e[k]}" for k in ("expert",) if k in e)
        if kind == "progress" and e.get("total"):
            step, total = int(e.get("step", 0)), int(e["total"])
            frac = step / total
            loss = f" · loss {e['loss']:.4f}" if isinstance(e.get("loss"), (int, float)) else ""
            tps = f" · {e['tokens_per_s']:.0f} tok/s" if isinstance(e.get("tokens_per_s"), (int, float)) else ""
            msg = f"{prefix + ' · ' if prefix else ''}step {step}/{total}{loss}{tps}{_fmt_eta(e.get('eta_s'))}"
            # the loop's own step, so a resumed job continues the same curve; experts trained
            # one after another are laid end to end
            metric_step = step + int(e.get("expert", 0)) * total
            if "expert" in e:  # names the series of the losses that follow (one curve per expert)
                self.store.metric("expert", float(e["expert"]), step=metric_step, job_id=self.job_id)
            for key in METRIC_KEYS:
                if isinstance(e.get(key), (int, float)):
                    self.store.metric(key, float(e[key]), step=metric_step, job_id=self.job_id)
            self.store.job_progress(self.job_id, self._overall(e, frac), msg)
        else:
            detail = ", ".join(
                f"{k}={v}" for k, v in e.items() if k not in ("event", "phase") and not isinstance(v, (list, dict))
            )
            self.store.job_progress(self.job_id, self._overall(e, None), f"{kind}{': ' + detail if detail else ''}")

    def _overall(self, e: dict[str, Any], frac: float | None) -> float:
        """Progress over the whole job (experts k of K count as parts); kept when unknown."""
        if "fraction" in e:
            self.progress = float(e["fraction"])
        elif frac is not None:
            if "expert" in e and e.get("experts"):
                frac = (int(e["expert"]) + frac) / int(e["experts"])
            self.progress = frac
        return self.progress
