"""A user's recent history, read from the prepared dataset.

The service has no history call (Personalize has none either), so the page reads the
same `interactions.csv` the model was trained on and names it on the page. Titles come
from the dataset's `items.csv`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from recs.pipeline.dataset import INTERACTIONS_FILE, read_interactions, read_items


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One interaction of a user with a video."""

    item_id: str
    title: str
    event_type: str  # watched or clicked (or whatever the dataset holds)
    timestamp: int  # Unix seconds


class History:
    """Interactions of a prepared dataset, and the catalog's titles, for look-ups by user."""

    def __init__(self, interactions: pa.Table, titles: dict[str, str], source: Path) -> None:
        self._interactions = interactions
        self._titles = titles
        self.source = source  # the interactions file, named on the page

    @classmethod
    def load(cls, data_dir: str | Path) -> History:
        """Read `interactions.csv` and `items.csv` (optional) of a prepared dataset.

        Raises `pipeline.dataset.DatasetError` naming the file when one is unreadable.
        """
        data_dir = Path(data_dir)
        interactions = read_interactions(data_dir)
        items = read_items(data_dir)
        titles: dict[str, str] = {}
        if items is not None and "TITLE" in items.column_names:
            titles = dict(
                zip(
                    items.column("ITEM_ID").to_pylist(),
                    items.column("TITLE").to_pylist(),
                    strict=True,
                )
            )
        return cls(interactions, titles, data_dir / INTERACTIONS_FILE)

    def title(self, item_id: str) -> str:
        """The catalog title of a video ('' when the catalog lacks it)."""
        return self._titles.get(item_id) or ""

    def recent(self, user_id: str, limit: int = 10) -> tuple[list[HistoryEntry], int]:
        """The user's latest `limit` interactions, newest first, and how many they have.

        Interactions with the same timestamp keep the dataset's order, later rows first.
        """
        rows = self._interactions.filter(pc.equal(self._interactions["USER_ID"], user_id))
        total = rows.num_rows
        # Reverse first, so a stable sort puts later rows first among equal timestamps.
        rows = rows.take(pa.array(range(total - 1, -1, -1), type=pa.int64()))
        rows = rows.take(pc.sort_indices(rows, [("TIMESTAMP", "descending")])[:limit])
        events = (
            rows.column("EVENT_TYPE").to_pylist()
            if "EVENT_TYPE" in rows.column_names
            else [""] * rows.num_rows
        )
        entries = [
            HistoryEntry(item_id, self.title(item_id), event or "", timestamp)
            for item_id, event, timestamp in zip(
                rows.column("ITEM_ID").to_pylist(),
                events,
                rows.column("TIMESTAMP").to_pylist(),
                strict=True,
            )
        ]
        return entries, total

    def active_users(self, limit: int = 100) -> list[str]:
        """The users with the most interactions, most first (ties by id), to pick from."""
        counts = pc.value_counts(self._interactions["USER_ID"])
        pairs = zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        )
        ranked = sorted(pairs, key=lambda pair: (-pair[1], pair[0]))
        return [user_id for user_id, _ in ranked[:limit]]

    def titled_items(self, limit: int = 2000) -> list[str]:
        """Ids of catalog videos, sorted by title, to pick a video from."""
        ordered = sorted(self._titles, key=lambda item_id: (self._titles[item_id] or "", item_id))
        return ordered[:limit]
