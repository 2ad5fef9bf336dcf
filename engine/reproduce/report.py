"""``DIR/report.md``: the reproduced tables in Markdown, with SVG bar charts beside them.

Charts are plain SVG written here (no plotting dependency): one horizontal bar per row,
its length the overall AC, the PR printed next to it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from engine.evaluation.tables import DIFFICULTY_ORDER


def _pct(x: Any) -> str:
    return "-" if x is None else f"{float(x):.2f}"


def _order(levels: set[str]) -> list[str]:
    known = [d for d in DIFFICULTY_ORDER if d in levels]
    return known + sorted(levels - set(known))


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
        levels = _order({d for r in runs for d in r["metrics"]["by_difficulty"]})
        head = ["Method", *[f"{d} PR | {d} AC" for d in levels], "Overall PR | Overall AC", "calls", "cost $"]
        parts.append(f"**{dataset}** (PR / AC in %)\n")
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
    cols: list[tuple[str, str]] = []
    for summ in summaries.values():
        for ds, diffs in summ.items():
            levels = ["overall"] if dataset_overall_only else [*_order(set(diffs) - {"overall"}), "overall"]
            cols += [(ds, d) for d in levels if (ds, d) not in cols]
    head = ["Solver"] + [f"{ds} {d} PR | {ds} {d} AC" for ds, d in cols]
    lines = ["| " + " | ".join(h for col in head for h in col.split(" | ")) + " |", "|" + "---|" * (1 + 2 * len(cols))]
    bars = []
    for solver, summ in summaries.items():
        cells = [solver]
        for ds, d in cols:
            st = summ.get(ds, {}).get(d)
            cells += [_pct(st["pr"]), _pct(st["ac"])] if st else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
        first = summ.get(cols[0][0], {}).get("overall") if cols else None
        if first:
            bars.append((solver, first["ac"], first["pr"]))
    return "\n".join(lines), bars


def write_report(out: Path, results: dict[str, Any], scale: str, agents: list[str], base: str) -> Path:
    t1, bars1 = table1_markdown(results.get("table1") or {})
    t2, bars2 = eval_markdown(results["table2"]["summaries"], dataset_overall_only=False)
    t3, bars3 = eval_markdown(results["table3"]["summaries"], dataset_overall_only=True)
    for name, bars, title in (
        ("table1.svg", bars1, "Table 1: AC per method (overall)"),
        ("table2.svg", bars2, "Table 2: AC per solver (test split, overall)"),
        ("table3.svg", bars3, "Table 3: AC per solver (first dataset)"),
    ):
        (out / name).write_text(bar_chart(bars, title))
    data = results.get("data") or {}
    notes = results.get("notes") or []
    md = [
        f"# BDC reproduction ({scale} scale)",
        "",
        f"Agents: {', '.join(agents)}. Base model: `{base}`. Runs: `bdc --db {out / 'bdc.db'} runs`.",
        "",
        "**Caveats.** Numbers at this scale come from few problems and short searches; they show "
        "the pipeline working end to end and are not comparable with the paper's. At `tiny` scale "
        "the agents are scripted and the base model is a random tiny Llama: its PR/AC is 0 by design.",
        "",
        "## Table 1: System 2 knowledge exploration",
        "",
        t1 or "_No APPS / CodeContests file was found; see the notes._",
        "",
        "![Table 1](table1.svg)",
        "",
        "## Data (train split)",
        "",
        f"{data.get('examples', 0)} training pairs from {data.get('solved', 0)} solved of "
        f"{data.get('searched', 0)} searched train problems (one p2t and one t2s pair per solved problem).",
        "",
        "## Table 2: System2-to-System1 tuning (test split)",
        "",
        t2,
        "",
        "![Table 2](table2.svg)",
        "",
        "## Table 3: across datasets",
        "",
        t3,
        "",
        "![Table 3](table3.svg)",
        "",
    ]
    if notes:
        md += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    return path
