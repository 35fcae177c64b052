"""The video catalog used to enrich responses with title and url.

Loaded once at start-up from a prepared `items.csv` (Personalize's items format). A video
missing from the catalog is still returned, with empty title and url.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.dataset import read_items

# Catalog columns copied into the response's metadata map (title and url have own fields).
METADATA_COLUMNS = ("CATEGORIES", "DURATION", "CREATION_TIMESTAMP")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """What the response shows about one video besides its id and score."""

    title: str = ""
    url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


_MISSING = CatalogEntry()


class Catalog:
    """Item id -> catalog entry; an empty catalog enriches nothing."""

    def __init__(self, entries: dict[str, CatalogEntry] | None = None) -> None:
        self._entries = entries or {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._entries

    def get(self, item_id: str) -> CatalogEntry:
        """The entry for `item_id`, or an empty one when the video is not in the catalog."""
        return self._entries.get(item_id, _MISSING)

    @classmethod
    def load(cls, path: str | Path | None) -> Catalog:
        """Load `items.csv` (or a dataset dir holding it); None gives an empty catalog."""
        if path is None:
            return cls()
        table = read_items(path)
        if table is None:
            return cls()
        columns = table.to_pydict()
        ids = columns["ITEM_ID"]
        titles = columns.get("TITLE") or [""] * len(ids)
        urls = columns.get("URL") or [""] * len(ids)
        extra = {name: columns[name] for name in METADATA_COLUMNS if name in columns}
        entries = {}
        for row, item_id in enumerate(ids):
            metadata = {
                name.lower(): str(values[row])
                for name, values in extra.items()
                if values[row] is not None
            }
            entries[item_id] = CatalogEntry(titles[row] or "", urls[row] or "", metadata)
        return cls(entries)
