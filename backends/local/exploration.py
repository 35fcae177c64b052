"""New videos get a chance: Personalize's item exploration, on the local engine.

Personalize's User-Personalization recipe recommends items with little or no interaction data
("exploration"), configured per campaign with `itemExplorationConfig`: `explorationWeight`
from 0 (none) to 1 (most), default 0.3, and `explorationItemAgeCutOff`, "the maximum item age
in days since the latest interaction across all items", default 30, the age taken from the
item's creation timestamp (https://docs.aws.amazon.com/personalize/latest/dg/native-recipe-new-item-USER_PERSONALIZATION.html,
create-recommender-configure-exploration.html). It does not publish how it mixes them in;
the local engine does this, deterministically for a given model and user:

- **New items** are the items the model has no factors for (in the catalog or added with
  PutItems) whose CREATION_TIMESTAMP is at most `cutoff` days before the latest interaction
  (training's newest, moved on by events received since).
- **Their factors** are estimated from their categories (CATEGORIES, or a video-on-demand
  catalog's GENRES): each category's centroid is the mean factor vector of the trained items
  in it, and a new item's vector is the mean of its categories' centroids (an item with no
  known category gets none and is not explored).
- **Mixing**: an answer of n items gives ⌊weight × n / 2 + ½⌋ slots to new items (weight
  1: half the answer; 0.3: 3 of 20, 2 of 10), the user's best new items by the dot product
  with their vector (so a comedy video reaches comedy fans first), placed at evenly spread
  positions and marked with the reason `Exploration`. Filters apply to them as to every item.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recs.backends.base import CatalogItem

EXPLORATION_REASON = "Exploration"
DEFAULT_WEIGHT = 0.3
DEFAULT_AGE_CUTOFF_DAYS = 30.0
DAY = 86_400


@dataclass(frozen=True)
class NewItems:
    """The items exploration may recommend: universe indices and estimated factors."""

    items: np.ndarray  # int64 universe indices
    factors: np.ndarray  # float32 (len(items), factors)

    @classmethod
    def none(cls, factors: int) -> NewItems:
        return cls(np.empty(0, dtype=np.int64), np.empty((0, factors), dtype=np.float32))


def find_new_items(
    item_factors: np.ndarray,
    universe: Mapping[str, int],
    catalog: pa.Table | None,
    added: Sequence[CatalogItem],
    latest_time: float,
    cutoff_days: float,
) -> NewItems:
    """The catalog's and PutItems' items without factors created within `cutoff_days` of
    `latest_time`, with factors estimated from their categories (see the module).

    The recent items are found first, column-wise: a catalog with none (the usual case)
    costs start-up no pass over its rows in Python."""
    num_items, width = item_factors.shape
    cutoff = latest_time - cutoff_days * DAY
    created = _recent_catalog_items(catalog, cutoff)
    for item in added:  # the latest version of a video wins over the catalog's
        stamp = _number(item.properties.get("CREATION_TIMESTAMP"))
        if stamp is not None and stamp >= cutoff:
            created[item.item_id] = stamp
        else:
            created.pop(item.item_id, None)
    candidates = [i for i in created if universe.get(i, 0) >= num_items]
    if not candidates:
        return NewItems.none(width)
    categories: dict[str, str] = {}
    column = _category_column(catalog.column_names if catalog is not None else [])
    if catalog is not None and column is not None:
        ids = catalog.column("ITEM_ID").to_pylist()
        categories.update(zip(ids, catalog.column(column).to_pylist(), strict=True))
    for item in added:
        field = _category_column(item.properties) or "CATEGORIES"
        categories[item.item_id] = item.properties.get(field)  # type: ignore[assignment]
    centroids = _category_centroids(item_factors, universe, categories, num_items)
    items, vectors = [], []
    for item_id in candidates:
        known = [centroids[c] for c in _split(categories.get(item_id)) if c in centroids]
        if known:
            items.append(universe[item_id])
            vectors.append(np.mean(known, axis=0))
    if not items:
        return NewItems.none(width)
    order = np.argsort(items, kind="stable")  # universe order, whatever the dict's
    return NewItems(
        np.array(items, dtype=np.int64)[order], np.array(vectors, dtype=np.float32)[order]
    )


def _recent_catalog_items(catalog: pa.Table | None, cutoff: float) -> dict[str, float]:
    """Catalog id -> CREATION_TIMESTAMP of the rows created at `cutoff` or later."""
    if catalog is None or "CREATION_TIMESTAMP" not in catalog.column_names:
        return {}
    try:
        stamps = pc.cast(catalog.column("CREATION_TIMESTAMP"), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not numbers: none is recent
        return {}
    recent = pc.fill_null(pc.greater_equal(stamps, cutoff), False)
    ids = pc.filter(catalog.column("ITEM_ID"), recent).to_pylist()
    return dict(zip(ids, pc.filter(stamps, recent).to_pylist(), strict=True))


def exploration_slots(weight: float, num_results: int) -> int:
    """How many of an answer's `num_results` slots go to new items."""
    return math.floor(weight * num_results / 2 + 0.5)


def explore(
    items: list[str],
    scores: list[float],
    vector: np.ndarray,
    new: NewItems,
    names: Callable[[np.ndarray], list[str]],
    allowed: np.ndarray | None,
    weight: float,
    num_results: int,
    log_normalizer: float | None,
) -> tuple[list[str], list[float], set[int]]:
    """`items` (ids, best first) with this user's best new items mixed in: (items, scores,
    the positions that are exploration picks). `names` gives the ids of universe indices;
    `allowed` is the request's universe mask (None: everything). A new item's score is its
    softmax share under the user's normaliser when known, else 0."""
    slots = min(exploration_slots(weight, num_results), len(new.items))
    if slots <= 0:
        return items[:num_results], scores[:num_results], set()
    dots = new.factors @ vector
    candidates = np.arange(len(new.items))
    if allowed is not None:
        candidates = candidates[allowed[new.items]]
    chosen = candidates[np.lexsort((new.items[candidates], -dots[candidates]))][:slots]
    if not len(chosen):
        return items[:num_results], scores[:num_results], set()
    picks = names(new.items[chosen])
    pick_scores = (
        np.exp(dots[chosen] - log_normalizer).tolist()
        if log_normalizer is not None
        else [0.0] * len(picks)
    )
    total = min(num_results, len(items) + len(picks))
    step = total / len(picks)
    positions = sorted({min(total - 1, int(k * step + step / 2)) for k in range(len(picks))})
    positions = positions[: len(picks)]
    merged_items, merged_scores = [], []
    rest = iter(zip(items, scores, strict=True))
    explored = iter(zip(picks, pick_scores, strict=True))
    marked: set[int] = set()
    for position in range(total):
        new_here = position in positions
        pair = next(explored if new_here else rest, None)
        if pair is None:  # that side ran out: the other fills the slot
            new_here = not new_here
            pair = next(explored if new_here else rest, None)
        if pair is None:
            break
        if new_here:
            marked.add(len(merged_items))
        merged_items.append(pair[0])
        merged_scores.append(pair[1])
    return merged_items, merged_scores, marked


def _category_centroids(
    item_factors: np.ndarray,
    universe: Mapping[str, int],
    categories: Mapping[str, str | None],
    num_items: int,
) -> dict[str, np.ndarray]:
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for item_id, value in categories.items():
        at = universe.get(item_id)
        if at is None or at >= num_items:
            continue
        for category in _split(value):
            if category in sums:
                sums[category] = sums[category] + item_factors[at]
                counts[category] += 1
            else:
                sums[category] = np.array(item_factors[at], dtype=np.float64)
                counts[category] = 1
    return {category: sums[category] / counts[category] for category in sums}


def _category_column(columns: Sequence[str] | Mapping[str, str]) -> str | None:
    """Where a catalog keeps its categories: CATEGORIES, or GENRES in a video-on-demand one."""
    return next((name for name in ("CATEGORIES", "GENRES") if name in columns), None)


def _split(value: object) -> list[str]:
    """Personalize's categorical format: values separated by `|`, compared lower-cased."""
    if value is None:
        return []
    return [part.strip().lower() for part in str(value).split("|") if part.strip()]


def _number(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
