"""The figures of an evaluation JSON (`recs evaluate run --json`), ready to chart.

The page reads the file without importing the evaluation code. Every number in it is a
figure, named by the path of keys that leads to it. What the chart shows:

- the numbers under a `metrics` key, one bar series per key above it: `recs evaluate run`
  writes `results.<system>.metrics.<metric>`, so the evaluated system and its baselines
  stand side by side;
- in a file without `metrics` keys, every fraction (a non-integer from 0 to 1).

All figures (counts, lifts, split settings too) are listed beside the chart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRICS_KEY = "metrics"


class EvaluationFileError(ValueError):
    """The evaluation file is missing, not JSON, or holds no numbers (message names it)."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One number of an evaluation and the keys leading to it (list positions as `[i]`)."""

    path: tuple[str, ...]
    value: float
    whole: bool = False  # written as a JSON integer: a count, not a rate

    @property
    def name(self) -> str:
        """The dotted path, e.g. `results.local.metrics.precision_at_10`."""
        return ".".join(self.path) or "value"

    @property
    def is_fraction(self) -> bool:
        """A non-integer from 0 to 1: a rate that can share an axis with other rates."""
        return not self.whole and 0.0 <= self.value <= 1.0


@dataclass(frozen=True, slots=True)
class ChartBar:
    """One bar: a metric's value for one series (an evaluated system)."""

    series: str
    metric: str
    value: float


def load_figures(path: str | Path) -> list[Figure]:
    """Every number in the evaluation JSON at `path`, in file order."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvaluationFileError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationFileError(f"{path}: cannot read ({exc.__class__.__name__})") from exc
    except json.JSONDecodeError as exc:
        raise EvaluationFileError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    figures = list(_walk(data, ()))
    if not figures:
        raise EvaluationFileError(f"{path}: holds no numbers to show")
    return figures


def chart_bars(figures: Sequence[Figure]) -> list[ChartBar]:
    """The bars to chart: metrics per system, or every fraction when no `metrics` key."""
    bars = [
        ChartBar(figure.path[-3] if len(figure.path) > 2 else "", figure.path[-1], figure.value)
        for figure in figures
        if len(figure.path) > 1 and figure.path[-2] == METRICS_KEY
    ]
    if bars:
        return bars
    return [
        ChartBar(
            ".".join(figure.path[:-1]), figure.path[-1] if figure.path else "value", figure.value
        )
        for figure in figures
        if figure.is_fraction
    ]


# Personalize's long metric names, shortened for chart labels.
_SHORT_NAMES = {
    "normalized_discounted_cumulative_gain": "ndcg",
    "mean_reciprocal_rank": "mrr",
}


def short_metric_name(name: str) -> str:
    """A chart label: `normalized_discounted_cumulative_gain_at_10` becomes `ndcg@10`."""
    for long, short in _SHORT_NAMES.items():
        name = name.replace(long, short)
    return name.replace("_at_", "@")


def _walk(node: Any, keys: tuple[str, ...]) -> Iterator[Figure]:
    if isinstance(node, bool):  # JSON true/false are not figures
        return
    if isinstance(node, int | float):
        yield Figure(keys, float(node), whole=isinstance(node, int))
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*keys, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*keys, f"[{index}]"))
