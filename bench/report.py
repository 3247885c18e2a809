"""The results table every section of docs/BENCHMARKS.md starts with."""

from __future__ import annotations


def results_table(results: list[dict]) -> list[str]:
    """Markdown lines of a table of results: name, measure, baseline, ratio, goal, whether
    met (None: a figure for comparison, with no goal)."""
    lines = [
        "| benchmark | result | baseline (same run) | ratio | goal | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['name']} | {r['measure']} | {r['baseline']} | {r['ratio']:.2f} | "
            f"{r['goal']} | {met} |"
        )
    return lines
