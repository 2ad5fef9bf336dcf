"""``DIR/report.md``: the reproduced tables in Markdown, with SVG bar charts beside them.

Charts are plain SVG written here (no plotting dependency): one horizontal bar per row,
its length the overall AC, the PR printed next to it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from engine.evaluation.tables import order_difficulties, table_columns


def _pct(x: Any) -> str:
    return "-" if x is None else f"{float(x):.2f}"


def bar_chart(rows: list[tuple[str, float, float]], title: str) -> str:
    """An SVG of (label, AC %, PR %) rows."""
    width, label_w, bar_w, row_h = 760, 300, 360, 22
    height = 40 + row_h * len(rows)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<text x="8" y="20" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, ac, pr) in enumerate(rows):
        y = 32 + i * row_h
        w = max(0.0, min(ac, 100.0)) / 100 * bar_w
        out.append(f'<text x="8" y="{y + 14}">{escape(label[:48])}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{bar_w}" height="14" fill="#eeeeee"/>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="14" fill="#4c78a8"/>')
        out.append(f'<text x="{label_w + bar_w + 8}" y="{y + 14}">AC {ac:.1f}  PR {pr:.1f}</text>')
    out.append("</svg>")
    return "\n".join(out)


def table1_markdown(rows: dict[str, list[dict[str, Any]]]) -> tuple[str, list[tuple[str, float, float]]]:
    parts, bars = [], []
    for dataset, runs in rows.items():
        levels = order_difficulties({d for r in runs for d in r["metrics"]["by_difficulty"]})
        head = ["Method", *[f"{d} PR | {d} AC" for d in levels], "Overall PR | Overall AC", "calls", "cost $"]
        sizes = ", ".join(f"{d} {runs[0]['metrics']['by_difficulty'].get(d, {}).get('n', 0)}" for d in levels)
        parts.append(f"**{dataset}** (PR / AC in %; problems per difficulty: {sizes})\n")
        parts.append("| " + " | ".join(h for col in head for h in col.split(" | ")) + " |")
        parts.append("|" + "---|" * (2 * len(levels) + 5))
        for r in runs:
            m = r["metrics"]
            cells = [r["label"]]
            for d in levels:
                g = m["by_difficulty"].get(d)
                cells += [_pct(100 * g["pr"]), _pct(100 * g["ac"])] if g else ["-", "-"]
            o = m["overall"]
            cells += [_pct(100 * o["pr"]), _pct(100 * o["ac"]), str(o["calls"]), f"{o['cost']:.4f}"]
            parts.append("| " + " | ".join(cells) + " |")
            bars.append((f"{dataset}: {r['label']}", 100 * o["ac"], 100 * o["pr"]))
            if r.get("unfinished"):
                parts.append(f"\n_{r['label']}: {r['unfinished']} problems unfinished, counted as not solved._\n")
        parts.append("")
    return "\n".join(parts), bars


def eval_markdown(summaries: dict[str, Any], dataset_overall_only: bool) -> tuple[str, list[tuple[str, float, float]]]:
    cols = table_columns(summaries, overall_only=dataset_overall_only)
    head = ["Solver"] + [f"{ds} {d} (n={n}) PR | {ds} {d} AC" for ds, d, n in cols]
    lines = ["| " + " | ".join(h for col in head for h in col.split(" | ")) + " |", "|" + "---|" * (1 + 2 * len(cols))]
    bars = []
    for solver, summ in summaries.items():
        cells = [solver]
        for ds, d, _ in cols:
            st = summ.get(ds, {}).get(d)
            cells += [_pct(st["pr"]), _pct(st["ac"])] if st else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
        first = summ.get(cols[0][0], {}).get("overall") if cols else None
        if first:
            bars.append((solver, first["ac"], first["pr"]))
    return "\n".join(lines), bars


def _partial(done: int, expected: int) -> str:
    return "" if done >= expected else f" (partial: {done} of {expected} rows finished)"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def _stages(stages: dict[str, int]) -> str:
    return ", ".join(f"{n} {stage}" for stage, n in sorted(stages.items())) or "p2t and t2s"


def timings_markdown(seconds: dict[str, float]) -> str:
    """Wall time of every finished step, in the order they ran, with the total."""
    if not seconds:
        return "_No step has finished yet._"
    lines = ["| Step | minutes |", "|---|---|"]
    lines += [f"| {step} | {_minutes(s)} |" for step, s in seconds.items()]
    lines.append(f"| **total** | **{_minutes(sum(seconds.values()))}** |")
    return "\n".join(lines)


def write_report(out: Path, results: dict[str, Any], scale: str, agents: list[str], base: str) -> Path:
    """``out/report.md`` (and the charts) from what is done so far; a table not reached yet
    says so, and one with missing rows says how many it has."""
    table1 = results.get("table1") or {}
    t1, bars1 = table1_markdown(table1)
    expected = results.get("table1_expected") or {}
    t1_partial = _partial(sum(len(r) for r in table1.values()), sum(expected.values()))
    charts = [("table1.svg", bars1, "Table 1: AC per method (overall)")]
    sections = {}
    for key, overall_only, title in (
        ("table2", False, "Table 2: AC per solver (test split, overall)"),
        ("table3", True, "Table 3: AC per solver (first dataset)"),
    ):
        res = results.get(key)
        if res is None:
            sections[key] = "_Not run yet._"
            continue
        text, bars = eval_markdown(res["summaries"], dataset_overall_only=overall_only)
        sections[key] = f"{text}\n\n![{key}]({key}.svg)"
        charts.append((f"{key}.svg", bars, title))
    for name, bars, title in charts:
        (out / name).write_text(bar_chart(bars, title))
    data = results.get("data")
    notes = results.get("notes") or []
    status = "complete" if results.get("complete", True) else "**partial: the reproduction has not finished**"
    md = [
        f"# BDC reproduction ({scale} scale)",
        "",
        f"Status: {status}. Agents: {', '.join(agents)}. Base model: `{base}`. "
        f"Runs and jobs: `bdc --db {out / 'bdc.db'} runs` / `jobs`.",
        "",
        "**Caveats.** Numbers at this scale come from few problems and short searches; they show "
        "the pipeline working end to end and are not comparable with the paper's. At `tiny` scale "
        "the agents are scripted and the base model is a random tiny Llama: its PR/AC is 0 by design.",
        "",
        f"## Table 1: System 2 knowledge exploration{t1_partial}",
        "",
        (t1 + "\n\n![Table 1](table1.svg)")
        if t1
        else "_No Table 1 row has finished (or no APPS / CodeContests file was found; see the notes)._",
        "",
        "## Data (train split)",
        "",
        (
            f"{data.get('examples', 0)} training pairs ({_stages(data.get('stages') or {})}) from "
            f"{data.get('solved', 0)} solved of {data.get('searched', 0)} searched train problems: per solved "
            "problem its thought chain (p2t; none when the root's own solution passed) and its code (t2s)."
        )
        if data
        else "_Not run yet._",
        "",
        "## Table 2: System2-to-System1 tuning (test split)",
        "",
        sections["table2"],
        "",
        "## Table 3: across datasets",
        "",
        sections["table3"],
        "",
        "## Time per step",
        "",
        timings_markdown(results.get("seconds") or {}),
        "",
    ]
    if notes:
        md += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path
