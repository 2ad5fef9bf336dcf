"""Whole search trees as a dataset: one row per (run, problem), its nodes nested.

``bdc export --trees`` writes what a search explored, not only the training pairs: every
node's thought, its reflections, refinements, prune, solutions with their test verdicts,
its MCTS statistics, and the LLM calls made for it. Rows are built from the stored event
log (read through the store's public readers) by :func:`tree_rows` - the one place that
knows event payloads - and written as parquet (pyarrow, with the explicit :data:`SCHEMA`
so every file has the same columns) or JSONL, plus a dataset card (``README.md``) that
``datasets.load_dataset`` and the Hub read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.search import events as ev

CARD_MARK = "<!-- written by bdc export --trees -->"


def _schema() -> Any:
    import pyarrow as pa

    call = pa.struct(
        [
            ("policy", pa.string()),
            ("model", pa.string()),
            ("tokens_in", pa.int64()),
            ("tokens_out", pa.int64()),
            ("cost", pa.float64()),
            ("latency_s", pa.float64()),
            ("retries", pa.int64()),
            ("cached", pa.bool_()),
            ("error", pa.string()),
            ("ts", pa.float64()),
        ]
    )
    solution = pa.struct(
        [
            ("rollout", pa.int64()),
            ("policy", pa.string()),
            ("code", pa.string()),
            ("pass_rate", pa.float64()),
            ("passed", pa.int64()),
            ("total", pa.int64()),
            ("verdicts", pa.list_(pa.string())),
            ("feedback", pa.string()),
            ("parse_error", pa.string()),
        ]
    )
    reflection = pa.struct([("rollout", pa.int64()), ("policy", pa.string()), ("summary", pa.string())])
    refinement = pa.struct(
        [
            ("rollout", pa.int64()),
            ("policy", pa.string()),
            ("old_thought", pa.string()),
            ("new_thought", pa.string()),
            ("summary", pa.string()),
        ]
    )
    node = pa.struct(
        [
            ("node_id", pa.string()),
            ("parent_id", pa.string()),
            ("depth", pa.int64()),
            ("thought", pa.string()),
            ("policy", pa.string()),
            ("prior", pa.float64()),
            ("terminal", pa.bool_()),
            ("expanded_in", pa.int64()),
            ("visits", pa.int64()),
            ("q", pa.float64()),
            ("pass_rate", pa.float64()),
            ("pruned", pa.bool_()),
            ("prune_parent_pass_rate", pa.float64()),
            ("reflections", pa.list_(reflection)),
            ("refinements", pa.list_(refinement)),
            ("solutions", pa.list_(solution)),
            ("calls", pa.list_(call)),
        ]
    )
    return pa.schema(
        [
            ("run_id", pa.string()),
            ("run_name", pa.string()),
            ("strategy", pa.string()),
            ("problem_id", pa.string()),
            ("dataset", pa.string()),
            ("difficulty", pa.string()),
            ("statement", pa.string()),
            ("starter_code", pa.string()),
            ("status", pa.string()),
            ("solved_by", pa.string()),
            ("final_code", pa.string()),
            ("public_pass_rate", pa.float64()),
            ("private_pass_rate", pa.float64()),
            ("passed_private", pa.bool_()),
            ("rollouts", pa.int64()),
            (
                "llm_errors",
                pa.list_(pa.struct([("policy", pa.string()), ("stage", pa.string()), ("message", pa.string())])),
            ),
            ("other_calls", pa.list_(call)),
            ("nodes", pa.list_(node)),
        ]
    )


def schema() -> Any:
    """The pyarrow schema of a tree row (also what the dataset card lists)."""
    return _schema()


def _call(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "policy": c.get("policy"),
        "model": c.get("model"),
        "tokens_in": int(c.get("tokens_in") or 0),
        "tokens_out": int(c.get("tokens_out") or 0),
        "cost": float(c.get("cost") or 0.0),
        "latency_s": float(c.get("latency_s") or 0.0),
        "retries": int(c.get("retries") or 0),
        "cached": bool(c.get("cached")),
        "error": c.get("error"),
        "ts": c.get("ts"),
    }


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def _node(node_id: str, parent: str | None, depth: int, thought: str, **kw: Any) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "parent_id": parent,
        "depth": depth,
        "thought": thought,
        "policy": kw.get("policy"),
        "prior": _opt_float(kw.get("prior")),
        "terminal": bool(kw.get("terminal", False)),
        "expanded_in": kw.get("rollout"),
        "visits": 0,
        "q": None,
        "pass_rate": None,
        "pruned": False,
        "prune_parent_pass_rate": None,
        "reflections": [],
        "refinements": [],
        "solutions": [],
        "calls": [],
    }


def tree_rows(
    run: Any, problems: list[dict[str, Any]], events: Iterable[Any], calls: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per problem of ``run`` (a RunRow), from its events (oldest first) and LLM calls.

    ``problems`` are ``Store.run_problems`` rows. The thought a node ends with is its latest
    (a refinement replaces it; the old one stays in ``refinements``)."""
    trees: dict[str, dict[str, Any]] = {}
    nodes: dict[str, dict[str, dict[str, Any]]] = {}
    for p in problems:
        prob = p.get("problem") or {}
        pid = p["problem_id"]
        trees[pid] = {
            "run_id": run.id,
            "run_name": run.name,
            "strategy": run.strategy,
            "problem_id": pid,
            "dataset": prob.get("dataset") or run.dataset,
            "difficulty": p.get("difficulty") or prob.get("difficulty"),
            "statement": prob.get("statement", ""),
            "starter_code": prob.get("starter_code", "") or "",
            "status": p.get("status"),
            "solved_by": None,
            "final_code": None,
            "public_pass_rate": None,
            "private_pass_rate": None,
            "passed_private": None,
            "rollouts": None,
            "llm_errors": [],
            "other_calls": [],
        }
        nodes[pid] = {}
    for e in events:
        pid = e.problem_id
        if pid not in trees:
            continue
        t, ns, pl = trees[pid], nodes[pid], e.payload_dict() or {}
        if e.kind == ev.ROOT:
            root = str(pl.get("node", "0"))
            ns.setdefault(root, _node(root, None, 0, ""))
        elif e.kind == ev.EXPAND:
            parent = str(pl.get("parent"))
            pdepth = ns[parent]["depth"] if parent in ns else 0
            for c in pl.get("children") or []:
                nid = str(c["node"])
                ns[nid] = _node(
                    nid,
                    parent,
                    int(c.get("depth", pdepth + 1)),
                    c.get("thought", ""),
                    policy=c.get("policy"),
                    prior=c.get("prior"),
                    terminal=c.get("terminal"),
                    rollout=pl.get("rollout"),
                )
        elif e.kind == ev.SIMULATE and str(pl.get("node")) in ns:
            n = ns[str(pl["node"])]
            n["pass_rate"] = _opt_float(pl.get("pass_rate"))
            for s in pl.get("solutions") or []:
                n["solutions"].append(
                    {
                        "rollout": pl.get("rollout"),
                        "policy": s.get("policy"),
                        "code": s.get("code"),
                        "pass_rate": _opt_float(s.get("pass_rate")),
                        "passed": s.get("passed"),
                        "total": s.get("total"),
                        "verdicts": [str(v) for v in s.get("verdicts") or []],
                        "feedback": s.get("feedback"),
                        "parse_error": s.get("parse_error"),
                    }
                )
        elif e.kind == ev.BACKUP:
            for nid, q in (pl.get("q") or {}).items():
                if str(nid) in ns:
                    ns[str(nid)]["q"] = _opt_float(q)
            for nid, visits in (pl.get("n") or {}).items():
                if str(nid) in ns:
                    ns[str(nid)]["visits"] = int(visits)
        elif e.kind == ev.PRUNE and str(pl.get("node")) in ns:
            n = ns[str(pl["node"])]
            n["pruned"], n["prune_parent_pass_rate"] = True, _opt_float(pl.get("parent_pass_rate"))
        elif e.kind == ev.REFLECT and str(pl.get("node")) in ns:
            ns[str(pl["node"])]["reflections"].append(
                {"rollout": pl.get("rollout"), "policy": pl.get("policy"), "summary": pl.get("summary")}
            )
        elif e.kind == ev.REFINE and str(pl.get("node")) in ns:
            n = ns[str(pl["node"])]
            n["refinements"].append(
                {k: pl.get(k) for k in ("rollout", "policy", "old_thought", "new_thought", "summary")}
            )
            n["thought"] = pl.get("new_thought") or n["thought"]
        elif e.kind == ev.SOLUTION_FOUND:
            t["solved_by"] = str(pl.get("node")) if pl.get("node") is not None else None
        elif e.kind == ev.LLM_ERROR:
            t["llm_errors"].append({k: pl.get(k) for k in ("policy", "stage", "message")})
        elif e.kind == ev.PROBLEM_FINISHED:
            t.update(
                final_code=pl.get("code"),
                public_pass_rate=_opt_float(pl.get("public_pass_rate")),
                private_pass_rate=_opt_float(pl.get("private_pass_rate")),
                rollouts=pl.get("rollouts"),
                passed_private=pl.get("passed_private"),
                status=pl.get("status") or t["status"],
            )
    for c in calls:
        pid, nid = c.get("problem_id"), c.get("node_id")
        if pid not in trees:
            continue
        target = nodes[pid].get(str(nid)) if nid is not None else None
        (target["calls"] if target else trees[pid]["other_calls"]).append(_call(c))
    for pid, t in trees.items():
        t["nodes"] = sorted(nodes[pid].values(), key=lambda n: (n["depth"], _num(n["node_id"])))
    return list(trees.values())


def _num(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 62, node_id)


async def read_trees(store: Any, run_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Tree rows of ``run_ids`` (prefixes allowed) through the store's public readers."""
    rows: list[dict[str, Any]] = []
    for rid in run_ids:
        run = await store.run(rid)
        rows += tree_rows(
            run, await store.run_problems(run.id), await store.events(run.id), await store.llm_calls(run.id)
        )
    return rows


def write_trees(rows: list[dict[str, Any]], out: str | Path, fmt: str) -> Path:
    """Write ``rows`` as ``parquet`` or ``jsonl`` to ``out`` and the dataset card beside it."""
    out = Path(out)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows, schema=schema()), out)
    else:
        with out.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return out


def card_path(out: str | Path) -> Path:
    return Path(out).with_name("README.md")


def card_is_ours(out: str | Path) -> bool:
    """Whether the README.md beside ``out`` may be (re)written: absent, or one we wrote."""
    card = card_path(out)
    return not card.exists() or CARD_MARK in card.read_text(encoding="utf-8", errors="replace")


def write_card(rows: list[dict[str, Any]], out: str | Path, fmt: str) -> Path:
    """A short dataset card: what a row is, how to load it, the schema, and the counts."""
    out = Path(out)
    n_nodes = sum(len(r["nodes"]) for r in rows)
    solved = sum(1 for r in rows if r["solved_by"] is not None)
    runs = sorted({r["run_id"] for r in rows})
    loader = "parquet" if fmt == "parquet" else "json"
    text = f"""---
configs:
- config_name: default
  data_files: {out.name}
---
{CARD_MARK}
# bdc search trees

Whole MC-Tree-Of-Agents search trees exported by `bdc export --trees` from {len(runs)} run(s):
{len(rows)} trees (one per run x problem), {n_nodes} nodes, {solved} solved (a solution passed every
public test). Each row is one problem's tree; `nodes` holds every node with its thought (after
refinement), reflections, refinements, prune, the solutions written there with per-test verdicts,
its MCTS statistics (visits, q) and the LLM calls made for it. `private_pass_rate` is measured on
the problem's private tests, which never guided the search.

```python
import datasets, pandas as pd
ds = datasets.load_dataset("{loader}", data_files="{out.name}", split="train")
df = pd.read_{"parquet" if fmt == "parquet" else "json"}("{out.name}"{"" if fmt == "parquet" else ", lines=True"})
```

## Schema

```
{schema().to_string(show_field_metadata=False)}
```

Runs: {", ".join(runs)}
"""
    path = card_path(out)
    path.write_text(text, encoding="utf-8")
    return path
