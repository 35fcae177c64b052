"""Answers as wire bytes, assembled from each catalog item's bytes serialized once.

The four recommendation responses share one shape: `repeated RecommendedItem items = 1`
and `string recommendation_id = 2`. Everything about an item except its score (id,
title, url, metadata) is the same in every answer, so protobuf serializes it once per
catalog item; an answer is then those bytes joined with each item's score. That is a
join of a few dozen byte strings instead of building, copying and serializing one
message per item, which cost the event loop more than the rest of a request's own work.

The protobuf wire format allows a message's fields in any order and a repeated field's
elements as separate records, so `item bytes + score field` parses to the same message
as protobuf's own serialization (tests/server/test_encoding.py checks that it does).
Only the framing is written here: a record's tag and length and the score's 8 bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from google.protobuf.descriptor import FieldDescriptor

from recs.backends.base import CatalogItem
from recs.server.catalog import Catalog
from recs.v1 import recommendation_service_pb2 as pb

# Wire types (protobuf encoding spec): 1 = 64-bit, 2 = length-delimited.
_FIXED64, _LENGTH_DELIMITED = 1, 2
_SCORE = struct.Struct("<d")
_RESPONSES = (
    pb.GetRecommendationsResponse,
    pb.GetSimilarItemsResponse,
    pb.GetPopularItemsResponse,
    pb.GetTrendingItemsResponse,
    pb.GetPersonalizedRankingResponse,
)
# The responses the servicer answers as bytes from this encoder (full protobuf names).
ENCODED_RESPONSES = frozenset(response.DESCRIPTOR.full_name for response in _RESPONSES)


def _field(message: type, name: str, wire_type: int, kind: int) -> bytes:
    """The tag byte of `message.name`, checked against the descriptor (fails on a proto change)."""
    descriptor = message.DESCRIPTOR.fields_by_name[name]
    if descriptor.type != kind or descriptor.number > 15:
        raise RuntimeError(f"{message.__name__}.{name} is not the field this encoder expects")
    return bytes([descriptor.number << 3 | wire_type])


_ONE_BYTE = [bytes([value]) for value in range(0x80)]


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint (lengths only here, so never negative)."""
    if value < 0x80:  # one byte: every id, and most records
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_ITEMS_TAGS = {
    _field(r, "items", _LENGTH_DELIMITED, FieldDescriptor.TYPE_MESSAGE) for r in _RESPONSES
}
_ID_TAGS = {
    _field(r, "recommendation_id", _LENGTH_DELIMITED, FieldDescriptor.TYPE_STRING)
    for r in _RESPONSES
}
if len(_ITEMS_TAGS) != 1 or len(_ID_TAGS) != 1:
    raise RuntimeError("the recommendation responses no longer share one layout")
(_ITEMS_TAG,), (_ID_TAG,) = _ITEMS_TAGS, _ID_TAGS
_SCORE_TAG = _field(pb.RecommendedItem, "score", _FIXED64, FieldDescriptor.TYPE_DOUBLE)
_SCORED_EXTRA = len(_SCORE_TAG) + _SCORE.size  # bytes the score adds to an item record


class ResponseEncoder:
    """Serialized recommendation responses: catalog items' bytes, scores, the answer's id.

    An item's record up to its score is built on first use and kept for catalog items
    (a bounded set); ids outside the catalog, which GetPersonalizedRanking's callers
    choose freely, are encoded for that answer only.
    """

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._records: dict[str, bytes] = {}

    def encode(
        self,
        item_ids: Sequence[str],
        scores: Sequence[float],
        recommendation_id: str,
        reasons: Mapping[int, tuple[str, ...]] | None = None,
    ) -> bytes:
        """One response's bytes: the items in order, each with its score (and the reasons
        of those at the positions `reasons` names), then the id."""
        # Records at even positions, scores at odd ones, each filled by one C-level loop.
        parts: list[bytes] = [b""] * (2 * len(item_ids))
        try:
            parts[::2] = map(self._records.__getitem__, item_ids)
        except KeyError:  # an item not encoded yet (its first answer, or not in the catalog)
            parts[::2] = [self._records.get(i) or self._record(i) for i in item_ids]
        parts[1::2] = map(_SCORE.pack, scores)  # ValueError if the lengths differ
        if reasons:  # the rare answer with reasons: those items' records written whole
            for position, reason in reasons.items():
                item_id, score = item_ids[position], scores[position]
                parts[2 * position] = self._explained(item_id, score, reason)
                parts[2 * position + 1] = b""
        if recommendation_id:
            encoded_id = recommendation_id.encode()
            parts.append(_ID_TAG + _varint(len(encoded_id)) + encoded_id)
        return b"".join(parts)

    def update_items(self, items: Sequence[CatalogItem]) -> None:
        """Videos added or replaced after start: into the catalog, their cached records
        dropped (call on the event loop, where answers are encoded)."""
        for item in items:
            self._catalog.put(item.item_id, item.title, item.url, item.properties)
            self._records.pop(item.item_id, None)

    def _explained(self, item_id: str, score: float, reason: tuple[str, ...]) -> bytes:
        """A whole `items` record with reasons: serialized by protobuf (the rare path)."""
        entry = self._catalog.get(item_id)
        body = pb.RecommendedItem(
            item_id=item_id,
            score=score,
            title=entry.title,
            url=entry.url,
            metadata=entry.metadata,
            reason=reason,
        ).SerializeToString()
        return _ITEMS_TAG + _varint(len(body)) + body

    def _record(self, item_id: str) -> bytes:
        """`items` record of `item_id` with a score of 8 bytes to follow."""
        entry = self._catalog.get(item_id)
        body = pb.RecommendedItem(
            item_id=item_id, title=entry.title, url=entry.url, metadata=entry.metadata
        ).SerializeToString()
        record = _ITEMS_TAG + _varint(len(body) + _SCORED_EXTRA) + body + _SCORE_TAG
        if item_id in self._catalog:
            self._records[item_id] = record
        return record
