"""The video catalog used to enrich responses with title and url.

Loaded once at start-up from a prepared `items.csv` (Personalize's items format). A video
missing from the catalog is still returned, with empty title and url.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recs.pipeline.dataset import read_items

# Catalog columns copied into the response's metadata map (title and url have own fields).
METADATA_COLUMNS = ("CATEGORIES", "GENRES", "DURATION", "CREATION_TIMESTAMP")  # GENRES: VOD


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """What the response shows about one video besides its id and score."""

    title: str = ""
    url: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


_MISSING = CatalogEntry()


class Catalog:
    """Item id -> catalog entry; an empty catalog enriches nothing.

    A loaded catalog keeps its columns and builds an entry when first asked for it: a
    server answers about a small part of a big catalog in its first seconds, and every
    worker process loads its own copy, so start-up pays only for an id -> row index.
    """

    def __init__(self, entries: dict[str, CatalogEntry] | None = None) -> None:
        self._entries = entries or {}
        self._rows: dict[str, int] = {}
        self._columns: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self._entries.keys() | self._rows.keys())

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._entries or item_id in self._rows

    def put(self, item_id: str, title: str, url: str, properties: Mapping[str, str]) -> None:
        """Add or replace one video (a PutItems): its metadata from `properties`."""
        metadata = {
            name.lower(): str(properties[name]) for name in METADATA_COLUMNS if name in properties
        }
        self._entries[item_id] = CatalogEntry(title, url, metadata)

    def get(self, item_id: str) -> CatalogEntry:
        """The entry for `item_id`, or an empty one when the video is not in the catalog."""
        entry = self._entries.get(item_id)
        if entry is not None:
            return entry
        row = self._rows.get(item_id)
        return _MISSING if row is None else self._entry_at(row)

    def _entry_at(self, row: int) -> CatalogEntry:
        columns = self._columns
        metadata = {
            name.lower(): str(columns[name][row])
            for name in METADATA_COLUMNS
            if name in columns and columns[name][row] is not None
        }
        title = columns["TITLE"][row] if "TITLE" in columns else None
        url = columns["URL"][row] if "URL" in columns else None
        return CatalogEntry(title or "", url or "", metadata)

    @classmethod
    def load(cls, path: str | Path | None) -> Catalog:
        """Load `items.csv` (or a dataset dir holding it); None gives an empty catalog."""
        catalog = cls()
        if path is None:
            return catalog
        table = read_items(path)
        if table is None:
            return catalog
        wanted = [
            n for n in ("ITEM_ID", "TITLE", "URL", *METADATA_COLUMNS) if n in table.column_names
        ]
        catalog._columns = table.select(wanted).to_pydict()
        # The last row of a repeated id wins, as it would in a dict built row by row.
        catalog._rows = {item_id: row for row, item_id in enumerate(catalog._columns["ITEM_ID"])}
        return catalog
