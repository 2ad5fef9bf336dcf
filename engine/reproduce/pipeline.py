"""The paper's pipeline, step by step, resumable from ``DIR/state.json``.

1. **Table 1**: every strategy searches a few problems per difficulty of APPS and CodeContests
   (when their files are found); one-model strategies run once per agent (the paper's rows).
2. **Data**: MC-Tree-Of-Agents searches the *train* split of ``scale.data_dataset`` (the first
   half of the dataset); ``bdc export``'s paper data (one pair per solved problem) is saved.
3. **Disentangle / train**: clustering, one expert per cluster, SFT on all, the merges,
   Twin-Merging and the DisenLoRA hypernetwork, into ``DIR/art``.
4. **Table 2**: every solver on the *test* split (the second half: disjoint from the train
   split, which ``bdc eval``'s overlap check confirms); **Table 3**: across datasets.

The System-2-to-System-1 half (steps 2-4) runs before Table 1: the two halves are independent,
and on a small machine the tuned models are the slow, informative part, so an interrupted run
still has its artifacts. ``DIR/report.md`` is rewritten after every step with what is done so
far, each table marked partial until it is complete, and the wall time of every step.

Searches run in ``DIR/bdc.db``, and so do the cluster, train and eval steps, as stored jobs:
``bdc --db DIR/bdc.db runs`` / ``jobs`` or the TUI show them (losses, clusters, results). A
step is skipped when ``state.json`` says it is done; an interrupted search is resumed from its
events, an interrupted job from its checkpoint. Everything is bounded by the scale and the
budgets given.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, DatasetError
from engine.problems.model import Problem
from engine.reproduce.scales import SOLVERS, Scale

Say = Callable[[str], None]


@dataclass
class Budgets:
    max_calls: int | None = None  # per search run
    max_cost_usd: float | None = None  # per search run


class State:
    """``DIR/state.json``: finished steps with their results, and the run id of each search."""

    def __init__(self, out: Path) -> None:
        self.path = out / "state.json"
        self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.data.setdefault("done", {})
        self.data.setdefault("runs", {})
        self.data.setdefault("notes", [])
        self.data.setdefault("jobs", {})  # step -> job id in DIR/bdc.db
        self.data.setdefault("seconds", {})  # step -> wall seconds of the run that finished it

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def done(self, step: str) -> Any:
        return self.data["done"].get(step)

    def mark(self, step: str, result: Any, seconds: float | None = None) -> Any:
        self.data["done"][step] = result
        if seconds is not None:
            self.data["seconds"][step] = round(seconds, 1)
        self.save()
        return result

    def note(self, text: str) -> None:
        if text not in self.data["notes"]:
            self.data["notes"].append(text)
            self.save()


class _Echo:
    """Echoes a stored job's notes to the console (the store keeps every progress event)."""

    def __init__(self, say: Say, step: str) -> None:
        self.say, self.step = say, step

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") == "note":
            self.say(f"  {self.step}: {event.get('message')}")


@dataclass
class Reproduction:
    out: Path
    scale: Scale
    agents: list[dict[str, Any]]
    base: str
    budgets: Budgets = field(default_factory=Budgets)
    say: Say = print
    after_step: Callable[[], object] | None = None  # called after every finished step (rewrites report.md)

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.state = State(self.out)
        self.db = self.out / "bdc.db"
        self._loaded: dict[str, list[Problem] | None] = {}

    # ------------------------------------------------------------ problems
    def _load(self, name: str) -> list[Problem] | None:
        if name not in self._loaded:
            self._loaded[name] = self._read(name)
        return self._loaded[name]

    def _read(self, name: str) -> list[Problem] | None:
        from engine.problems import load_dataset, resolve_path

        if resolve_path(name) is None:
            self.state.note(f"{name}: no dataset file found (see `bdc datasets list`); left out")
            return None
        try:
            return load_dataset(name)
        except DatasetError as e:
            self.state.note(f"{name}: {e}; left out")
            return None

    def table1_problems(self, name: str) -> list[Problem]:
        from engine.problems.registry import info

        problems = self._load(name) or []
        out: list[Problem] = []
        for level in info(name).difficulties:
            pool = [p for p in problems if p.difficulty == level and p.scorable]
            out += pool[: self.scale.per_difficulty] if self.scale.per_difficulty else pool
        return out

    def splits(self) -> tuple[list[Problem], list[Problem]]:
        """Train = the first half of the data dataset, test = the second half (disjoint)."""
        problems = self._load(self.scale.data_dataset)
        if not problems:
            raise DatasetError(f"the data dataset {self.scale.data_dataset!r} is needed for Tables 2 and 3")
        half = len(problems) // 2
        train, test = problems[:half], [p for p in problems[half:] if p.scorable]
        n_train, n_test = self.scale.train_problems, self.scale.test_problems
        return train[:n_train] if n_train else train, test[:n_test] if n_test else test

    # ------------------------------------------------------------ searches
    def search(
        self, key: str, strategy: str, agents: list[dict[str, Any]], problems: list[Problem], dataset: str
    ) -> dict[str, Any]:
        done = self.state.done(key)
        if done is not None:
            return done
        self.say(f"{key}: {strategy} on {len(problems)} problems")
        t0 = time.monotonic()
        result = asyncio.run(self._search(key, strategy, agents, problems, dataset))
        return self._finished(key, result, t0)

    def _finished(self, step: str, result: Any, t0: float) -> Any:
        self.state.mark(step, result, time.monotonic() - t0)
        if self.after_step is not None:
            self.after_step()
        return result

    async def _search(
        self, key: str, strategy: str, agents: list[dict[str, Any]], problems: list[Problem], dataset: str
    ) -> dict[str, Any]:
        from engine.search.config import RunConfig, SearchConfig
        from engine.search.metrics import results_counting_unfinished, summarize
        from engine.search.runner import create_search_run, execute_run
        from engine.store import Store

        store = await Store.open(self.db)
        try:
            await store.mark_dead_runs_interrupted()
            run_id = self.state.data["runs"].get(key)
            if run_id is None:
                cfg = RunConfig(
                    dataset=dataset,
                    strategy=strategy,
                    agents=agents,
                    search=SearchConfig(rollouts=self.scale.rollouts, thoughts_per_policy=self.scale.thoughts),
                    max_calls=self.budgets.max_calls,
                    max_cost_usd=self.budgets.max_cost_usd,
                )
                run_id = await create_search_run(store, cfg, problems, name=f"reproduce {key}")
                self.state.data["runs"][key] = run_id
                self.state.save()
            await execute_run(store, run_id)
            probs = await store.run_problems(run_id)
        finally:
            await store.close()
        results, unfinished = results_counting_unfinished(probs)
        return {
            "run_id": run_id,
            "strategy": strategy,
            "agents": [a["name"] for a in agents],
            "metrics": summarize(results),
            "unfinished": unfinished,
        }

    def table1_plan(self) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
        """(dataset, row label, strategy, agents) of every Table 1 row, in order; one-model
        strategies get one row per agent (the paper's rows)."""
        from engine.search.registry import agent_groups

        plan = []
        for name in self.scale.table1_datasets:
            if not self.table1_problems(name):
                continue
            for strategy in self.scale.strategies:
                for agents in agent_groups(strategy, self.agents):
                    plan.append((name, f"{strategy} ({', '.join(a['name'] for a in agents)})", strategy, agents))
        return plan

    def table1_expected(self) -> dict[str, int]:
        """Rows Table 1 will have per dataset (a report says a table with fewer is partial)."""
        counts: dict[str, int] = {}
        for name, *_ in self.table1_plan():
            counts[name] = counts.get(name, 0) + 1
        return counts

    def table1(self) -> dict[str, list[dict[str, Any]]]:
        rows: dict[str, list[dict[str, Any]]] = {}
        for name, label, strategy, agents in self.table1_plan():
            res = self.search(f"table1/{name}/{label}", strategy, agents, self.table1_problems(name), name)
            rows.setdefault(name, []).append({"label": label, **res})
        return rows

    def _data_summary(self, data: dict[str, Any] | None) -> dict[str, Any] | None:
        """The data step's counts with its pairs per stage (from ``DIR/data.jsonl``): a problem
        solved at the root has a t2s pair but no thought chain, so no p2t pair."""
        path = self.out / "data.jsonl"
        if data is None or not path.is_file():
            return data
        stages: dict[str, int] = {}
        for line in path.read_text().splitlines():
            if line.strip():
                stage = json.loads(line)["stage"]
                stages[stage] = stages.get(stage, 0) + 1
        return {**data, "stages": stages}

    def complete(self) -> bool:
        done = self.state.data["done"]
        steps = ["data", "cluster", "train/merge", "table2", "table3"]
        steps += [f"table1/{name}/{label}" for name, label, *_ in self.table1_plan()]
        return all(s in done for s in steps)

    def data(self, train: list[Problem]) -> Path:
        from engine.search.export import examples_from_run, one_per_problem
        from engine.training.examples import save_examples

        path = self.out / "data.jsonl"
        if self.state.done("data") is not None and path.is_file():
            return path
        res = self.search("data/search", "mcts", self.agents, train, self.scale.data_dataset)
        t0 = time.monotonic()
        examples = asyncio.run(self._examples(res["run_id"], examples_from_run))
        examples = one_per_problem(examples)
        if not examples:
            raise ConfigError(
                "the data search solved no train problem: no training data (more rollouts or stronger agents)"
            )
        save_examples(examples, path)
        solved = len({e.problem_id for e in examples})
        self._finished("data", {"examples": len(examples), "solved": solved, "searched": len(train)}, t0)
        return path

    async def _examples(self, run_id: str, build: Callable[..., list]) -> list:
        from engine.store import Store

        store = await Store.open(self.db)
        try:
            probs = {p["problem_id"]: p["problem"] for p in await store.run_problems(run_id)}
            return build(run_id, await store.events(run_id), probs)
        finally:
            await store.close()

    # ------------------------------------------------------------ training and evaluation
    def job(self, step: str, kind: str, config: dict[str, Any]) -> Any:
        """Run ``kind`` as a job stored in ``DIR/bdc.db`` (its progress, losses and result are
        what ``bdc jobs`` and the TUI's jobs and clusters screens show); a job left unfinished
        by an interrupted reproduction is run again, from its checkpoint."""
        done = self.state.done(step)
        if done is not None:
            return done
        self.say(f"{step}: {kind} {config.get('mode', '')}".rstrip())
        t0 = time.monotonic()
        status, result = asyncio.run(self._job(step, kind, config))
        if status != "finished":
            job_id = self.state.data["jobs"][step]
            raise ConfigError(f"{step}: job {job_id} {status}: {result} (its log: {self.out / 'logs' / job_id}.log)")
        return self._finished(step, _jsonable(result), t0)

    async def _job(self, step: str, kind: str, config: dict[str, Any]) -> tuple[str, Any]:
        from engine.jobs.runner import execute_job
        from engine.store import Store

        store = await Store.open(self.db)
        try:
            job_id = self.state.data["jobs"].get(step)
            if job_id is None or await store.job(job_id) is None:
                job_id = await store.create_job(kind, config)
                self.state.data["jobs"][step] = job_id
                self.state.save()
            return await execute_job(store, job_id, echo=_Echo(self.say, step))
        finally:
            await store.close()

    def train(self, data: Path) -> Path:
        art = self.out / "art"
        train = {**self.scale.train, "max_steps": self.scale.train_steps}
        common = {"data": str(data), "out": str(art), "base": self.base, "train": train}
        self.job(
            "cluster",
            "cluster",
            {"data": str(data), "k": self.scale.clusters, "out": str(art), "encoder": "auto", "base": self.base},
        )
        for mode in ("experts", "sft", "hyper", "twin"):
            self.job(f"train/{mode}", "train", {**common, "mode": mode})
        self.job(
            "train/merge",
            "train",
            {
                "mode": "merge",
                "out": str(art),
                "base": self.base,
                "methods": [s.split(":", 1)[1] for s in SOLVERS if s.startswith("merge:")],
            },
        )
        return art

    def evaluate(self, step: str, art: Path, datasets: list[dict[str, Any]]) -> dict[str, Any]:
        if not datasets:  # nothing beyond the test split (whose columns come from Table 2)
            return self.state.done(step) or self.state.mark(step, {"summaries": {}, "overlap": None})
        res = self.job(
            step,
            "eval",
            {
                "solvers": list(SOLVERS),
                "datasets": datasets,
                "base": self.base,
                "artifacts": str(art),
                "max_new_tokens": self.scale.max_new_tokens,
            },
        )
        return {"summaries": res["summaries"], "overlap": res.get("overlap")}

    def run(self) -> dict[str, Any]:
        train, test = self.splits()
        art = self.train(self.data(train))
        test_spec = {"name": self.scale.data_dataset, "ids": [p.id for p in test]}
        self.evaluate("table2", art, [test_spec])
        others = [
            {"name": n, "limit": self.scale.table3_limit}
            for n in self.scale.table3_datasets
            if n != self.scale.data_dataset and self._load(n)
        ]
        self.evaluate("table3", art, others)  # the test split's columns are Table 2's, not evaluated twice
        self.table1()
        return self.results()

    def results(self) -> dict[str, Any]:
        """What is done so far (``state.json``), in the shape ``report.write_report`` takes.

        Table 1 holds the rows finished so far; a missing table is ``None``. ``complete``
        says whether every step of the scale has finished.
        """
        done = self.state.data["done"]
        table1: dict[str, list[dict[str, Any]]] = {}
        for key, res in done.items():
            if key.startswith("table1/"):
                dataset, label = key.split("/", 2)[1:]
                table1.setdefault(dataset, []).append({"label": label, **res})
        t2, t3 = done.get("table2"), done.get("table3")
        table3 = None
        if t2 is not None and t3 is not None:
            table3 = {"summaries": _merge_summaries(t2["summaries"], t3["summaries"]), "overlap": t3.get("overlap")}
        return {
            "table1": table1,
            "table1_expected": self.table1_expected(),
            "table2": t2,
            "table3": table3,
            "data": self._data_summary(done.get("data")),
            "notes": list(self.state.data["notes"]),
            "seconds": dict(self.state.data["seconds"]),
            "complete": self.complete(),
        }


def _merge_summaries(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Per solver, the datasets of ``first`` then those of ``second``."""
    return {solver: {**first.get(solver, {}), **second.get(solver, {})} for solver in [*first, *second]}


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))
