"""The paper's pipeline, step by step, resumable from ``DIR/state.json``.

1. **Table 1**: every strategy searches a few problems per difficulty of APPS and CodeContests
   (when their files are found); one-model strategies run once per agent (the paper's rows).
2. **Data**: MC-Tree-Of-Agents searches the *train* split of ``scale.data_dataset`` (the first
   half of the dataset); ``bdc export``'s paper data (one pair per solved problem) is saved.
3. **Disentangle / train**: clustering, one expert per cluster, SFT on all, the merges,
   Twin-Merging and the DisenLoRA hypernetwork, into ``DIR/art``.
4. **Table 2**: every solver on the *test* split (the second half: disjoint from the train
   split, which ``bdc eval``'s overlap check confirms); **Table 3**: across datasets.

Searches run in ``DIR/bdc.db`` (open it with ``bdc --db DIR/bdc.db runs`` or the TUI). A step
is skipped when ``state.json`` says it is done; an interrupted search is resumed from its
events. Everything is bounded by the scale and the budgets given.
"""

from __future__ import annotations

import asyncio
import json
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

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)

    def done(self, step: str) -> Any:
        return self.data["done"].get(step)

    def mark(self, step: str, result: Any) -> Any:
        self.data["done"][step] = result
        self.save()
        return result

    def note(self, text: str) -> None:
        if text not in self.data["notes"]:
            self.data["notes"].append(text)
            self.save()


class _Reporter:
    """What the job kinds report to: progress is summarised in one line per phase."""

    def __init__(self, say: Say, step: str) -> None:
        self.say, self.step = say, step

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") == "note":
            self.say(f"  {self.step}: {event.get('message')}")

    def should_stop(self) -> bool:
        return False


@dataclass
class Reproduction:
    out: Path
    scale: Scale
    agents: list[dict[str, Any]]
    base: str
    budgets: Budgets = field(default_factory=Budgets)
    say: Say = print

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.state = State(self.out)
        self.db = self.out / "bdc.db"

    # ------------------------------------------------------------ problems
    def _load(self, name: str) -> list[Problem] | None:
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
        return self.state.mark(key, asyncio.run(self._search(key, strategy, agents, problems, dataset)))

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

    def table1(self) -> dict[str, list[dict[str, Any]]]:
        from engine.search.registry import STRATEGIES

        rows: dict[str, list[dict[str, Any]]] = {}
        for name in self.scale.table1_datasets:
            problems = self.table1_problems(name)
            if not problems:
                continue
            for strategy in self.scale.strategies:
                groups = [[a] for a in self.agents] if STRATEGIES[strategy].single_policy else [self.agents]
                for agents in groups:
                    label = f"{strategy} ({', '.join(a['name'] for a in agents)})"
                    res = self.search(f"table1/{name}/{label}", strategy, agents, problems, name)
                    rows.setdefault(name, []).append({"label": label, **res})
        return rows

    def data(self, train: list[Problem]) -> Path:
        from engine.search.export import examples_from_run, one_per_problem
        from engine.training.examples import save_examples

        path = self.out / "data.jsonl"
        if self.state.done("data") is not None and path.is_file():
            return path
        res = self.search("data/search", "mcts", self.agents, train, self.scale.data_dataset)
        examples = asyncio.run(self._examples(res["run_id"], examples_from_run))
        examples = one_per_problem(examples)
        if not examples:
            raise ConfigError(
                "the data search solved no train problem: no training data (more rollouts or stronger agents)"
            )
        save_examples(examples, path)
        solved = len({e.problem_id for e in examples})
        self.state.mark("data", {"examples": len(examples), "solved": solved, "searched": len(train)})
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
        from engine.jobs.kinds import KINDS

        done = self.state.done(step)
        if done is not None:
            return done
        self.say(f"{step}: {kind} {config.get('mode', '')}".rstrip())
        result = KINDS[kind](config, _Reporter(self.say, step))
        return self.state.mark(step, _jsonable(result))

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
        results: dict[str, Any] = {"table1": self.table1()}
        train, test = self.splits()
        art = self.train(self.data(train))
        test_spec = {"name": self.scale.data_dataset, "ids": [p.id for p in test]}
        results["table2"] = self.evaluate("table2", art, [test_spec])
        others = [
            {"name": n, "limit": self.scale.table3_limit}
            for n in self.scale.table3_datasets
            if n != self.scale.data_dataset and self._load(n)
        ]
        results["table3"] = self.evaluate("table3", art, [test_spec, *others])
        results["data"] = self.state.done("data")
        results["notes"] = list(self.state.data["notes"])
        return results


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))
