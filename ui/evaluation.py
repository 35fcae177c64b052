"""The figures of an evaluation JSON (`recs evaluate run --json`), ready to chart.

The page reads the file without depending on the evaluation code: every number in it is
a figure, named by its key and grouped by the keys above it. Rates (fractions from 0 to
1, such as precision_at_10 or coverage) share one chart; other figures (whole numbers
such as counts, and anything beyond 1 such as seconds) are listed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class EvaluationFileError(ValueError):
    """The evaluation file is missing, not JSON, or holds no numbers (message names it)."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One number of an evaluation: `group` is the path of keys above it ('' at the top)."""

    group: str
    name: str
    value: float
    whole: bool = False  # written as a JSON integer: a count, not a rate

    @property
    def is_rate(self) -> bool:
        """True for fractions from 0 to 1: metrics that can share one axis."""
        return not self.whole and 0.0 <= self.value <= 1.0


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


def _walk(node: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(node, bool):  # JSON true/false are not figures
        return
    if isinstance(node, int | float):
        name = keys[-1] if keys else "value"
        yield Figure(".".join(keys[:-1]), name, float(node), whole=isinstance(node, int))
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*keys, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*keys, f"[{index}]"))
