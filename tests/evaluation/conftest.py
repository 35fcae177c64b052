"""Tiny interaction tables made in the tests (no shared data needed)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest


def make_interactions(
    num_users: int = 60, num_items: int = 40, seed: int = 0, max_events: int = 30
) -> pa.Table:
    """Users with 1..max_events interactions each, some timestamps tied, two event types.

    Items have a popularity skew and users a taste (items near their own index), so
    models have something to learn.
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {c: [] for c in ("USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_TYPE")}
    values: list[float] = []
    for user in range(num_users):
        count = 1 + (user * 7) % max_events
        taste = user % num_items
        items = (taste + rng.geometric(0.25, size=count)) % num_items
        times = 1_700_000_000 + np.sort(rng.integers(0, 50, size=count)) * 60  # ties happen
        for item, time in zip(items, times, strict=True):
            rows["USER_ID"].append(f"u{user:03d}")
            rows["ITEM_ID"].append(f"i{item:03d}")
            rows["TIMESTAMP"].append(int(time))
            rows["EVENT_TYPE"].append("watched" if rng.random() < 0.6 else "clicked")
            values.append(round(float(rng.random()), 3))
    table = pa.table(
        {
            "USER_ID": pa.array(rows["USER_ID"], pa.string()),
            "ITEM_ID": pa.array(rows["ITEM_ID"], pa.string()),
            "TIMESTAMP": pa.array(rows["TIMESTAMP"], pa.int64()),
            "EVENT_TYPE": pa.array(rows["EVENT_TYPE"], pa.string()),
            "EVENT_VALUE": pa.array(values, pa.float64()),
        }
    )
    # Shuffle rows: nothing may depend on the file being sorted.
    return table.take(pa.array(rng.permutation(table.num_rows)))


@pytest.fixture
def interactions() -> pa.Table:
    return make_interactions()
