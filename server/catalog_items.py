"""Catalog entries as ready-made RecommendedItem messages, so answers are cheap to build.

Building a RecommendedItem from keyword arguments runs the `metadata` map through
Python's MutableMapping machinery for every item of every answer; copying a prebuilt
message (title, url, metadata already set) is one call into protobuf's C core, about six
times faster for a 25-item answer. Messages are built on first use and kept for items of
the catalog only (a bounded set); ids the catalog does not know, which callers of
GetPersonalizedRanking choose freely, get a fresh message each time.
"""

from __future__ import annotations

from recs.v1 import recommendation_service_pb2 as pb
from server.catalog import Catalog


class CatalogItems:
    """Item id -> RecommendedItem with id, title, url and metadata set (score left 0)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._built: dict[str, pb.RecommendedItem] = {}

    def prototype(self, item_id: str) -> pb.RecommendedItem:
        """The message to copy for `item_id` (never modify it: it may be shared)."""
        built = self._built.get(item_id)
        if built is None:
            entry = self._catalog.get(item_id)
            built = pb.RecommendedItem(
                item_id=item_id, title=entry.title, url=entry.url, metadata=entry.metadata
            )
            if item_id in self._catalog:
                self._built[item_id] = built
        return built
