"""Evaluation results as a terminal table (rich), a JSON document and a PNG chart.

The first result is the system under evaluation; the others are baselines, and every
rendering shows the system's lift over each of them: (system - baseline) / baseline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from recs.evaluation.run import EvaluationResult

# Metrics drawn in the chart, in this order (those missing from the results are skipped).
CHART_METRICS = (
    "normalized_discounted_cumulative_gain_at_5",
    "normalized_discounted_cumulative_gain_at_10",
    "normalized_discounted_cumulative_gain_at_25",
    "precision_at_10",
    "recall_at_25",
    "mean_reciprocal_rank_at_25",
    "coverage",
    "ranking_ndcg",
    "ranking_auc",
)

SHORT_NAMES = {
    "normalized_discounted_cumulative_gain_at_": "ndcg@",
    "precision_at_": "precision@",
    "recall_at_": "recall@",
    "mean_reciprocal_rank_at_": "mrr@",
}


def lift(system: float, baseline: float) -> float:
    """Relative lift of `system` over `baseline`; NaN when the baseline is 0 or NaN."""
    if not baseline or math.isnan(baseline) or math.isnan(system):
        return float("nan")
    return (system - baseline) / baseline


def metric_names(results: Sequence[EvaluationResult]) -> list[str]:
    """Every metric name of the results, Personalize's first, in a stable order."""
    names = {name for result in results for name in result.metrics}
    return sorted(names, key=lambda n: (n.startswith("ranking_"), _sort_key(n)))


def to_json(results: Sequence[EvaluationResult], context: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: context (split, ks, ...), every result, and the system's lifts."""
    system, baselines = results[0], results[1:]
    return {
        **context,
        "system": system.name,
        "results": {r.name: {"metrics": r.metrics, **r.details} for r in results},
        "lift": {
            b.name: {
                name: _finite_or_none(lift(value, b.metrics.get(name, float("nan"))))
                for name, value in system.metrics.items()
            }
            for b in baselines
        },
    }


def write_json(path: str | Path, results: Sequence[EvaluationResult], context: dict) -> None:
    """Write `to_json` to `path` (NaN written as null)."""
    document = _nan_to_none(to_json(results, context))
    Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def results_table(results: Sequence[EvaluationResult], title: str = "") -> Table:
    """Rows: metrics; columns: the system, each baseline, and the lift over each."""
    system, baselines = results[0], results[1:]
    table = Table(title=title or None, caption="vs X: lift over baseline X")
    table.add_column("metric", no_wrap=True)
    for result in results:
        table.add_column(result.name, justify="right")
    for baseline in baselines:
        table.add_column(f"vs {baseline.name}", justify="right")
    for name in metric_names(results):
        cells = [_format_value(r.metrics.get(name)) for r in results]
        value = system.metrics.get(name, float("nan"))
        lifts = [lift(value, b.metrics.get(name, float("nan"))) for b in baselines]
        table.add_row(short_name(name), *cells, *(_format_lift(x) for x in lifts))
    return table


def print_table(
    results: Sequence[EvaluationResult], title: str = "", console: Console | None = None
) -> None:
    """Print `results_table`; output that is not a terminal gets a width that fits the table."""
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=200)
    console.print(results_table(results, title))


def plot(path: str | Path, results: Sequence[EvaluationResult], title: str = "") -> None:
    """A grouped bar chart (PNG) of the main metrics, one bar per recommender."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    import numpy as np

    names = [n for n in CHART_METRICS if any(n in r.metrics for r in results)]
    width = 0.8 / max(len(results), 1)
    positions = np.arange(len(names))
    figure, axes = plt.subplots(figsize=(max(8, 1.3 * len(names)), 4.5), layout="constrained")
    for offset, result in enumerate(results):
        values = [result.metrics.get(n, float("nan")) for n in names]
        axes.bar(positions + offset * width, values, width, label=result.name)
    axes.set_xticks(positions + width * (len(results) - 1) / 2, [short_name(n) for n in names])
    axes.tick_params(axis="x", labelrotation=30)
    axes.set_ylabel("value (higher is better)")
    axes.set_title(title or "offline evaluation")
    axes.legend()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def short_name(metric: str) -> str:
    """`normalized_discounted_cumulative_gain_at_10` -> `ndcg@10` (others unchanged)."""
    for long, short in SHORT_NAMES.items():
        if metric.startswith(long):
            return short + metric[len(long) :]
    return metric


def _sort_key(name: str) -> tuple[str, int]:
    stem, _, k = name.rpartition("_at_")
    return (stem, int(k)) if k.isdigit() else (name, 0)


def _format_value(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _format_lift(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:+.1%}"


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value
