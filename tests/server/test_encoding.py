"""server.encoding writes bytes that protobuf parses to exactly the message it would build."""

from __future__ import annotations

import math

import pytest

from recs.server.catalog import Catalog, CatalogEntry
from recs.server.encoding import ResponseEncoder
from recs.v1 import recommendation_service_pb2 as pb

RESPONSES = [
    pb.GetRecommendationsResponse,
    pb.GetSimilarItemsResponse,
    pb.GetPopularItemsResponse,
    pb.GetPersonalizedRankingResponse,
]

CATALOG = Catalog(
    {
        "v1": CatalogEntry("First video", "https://b/v1.mp4", {"categories": "cats|dogs"}),
        "é-2": CatalogEntry("Vidéo ünïcode 🎬", "https://b/é.mp4", {}),
        "long": CatalogEntry("t" * 200, "u" * 20_000, {"k": "v" * 300, "duration": "12"}),
        "bare": CatalogEntry(),
    }
)


def expected(response_type: type, item_ids: list[str], scores: list[float], rid: str) -> object:
    """The message built field by field, as the servicer used to."""
    response = response_type(recommendation_id=rid)
    for item_id, score in zip(item_ids, scores, strict=True):
        entry = CATALOG.get(item_id)
        response.items.add(
            item_id=item_id, title=entry.title, url=entry.url, metadata=entry.metadata, score=score
        )
    return response


@pytest.mark.parametrize("response_type", RESPONSES)
@pytest.mark.parametrize(
    ("item_ids", "scores", "rid"),
    [
        (["v1", "é-2", "long", "bare"], [0.5, 0.25, 1e-300, 0.0], "3f1c0c1e-rid"),
        (["not-in-catalog", "v1"], [1.0, -0.0], ""),
        ([], [], "only-an-id"),
        ([], [], ""),
        (["v1", "v1"], [math.pi, 2.0], "r" * 300),
    ],
)
def test_encoded_bytes_parse_to_the_message_protobuf_would_build(
    response_type: type, item_ids: list[str], scores: list[float], rid: str
) -> None:
    encoded = ResponseEncoder(CATALOG).encode(item_ids, scores, rid)
    parsed = response_type.FromString(encoded)
    assert parsed == expected(response_type, item_ids, scores, rid)
    assert [item.score for item in parsed.items] == scores  # bit for bit, doubles


def test_records_are_kept_for_catalog_items_only() -> None:
    encoder = ResponseEncoder(CATALOG)
    first = encoder.encode(["v1", "stranger"], [0.75, 0.25], "a")
    assert encoder.encode(["v1", "stranger"], [0.75, 0.25], "a") == first
    assert set(encoder._records) == {"v1"}  # ids callers invent do not grow the cache


def test_ids_and_scores_must_pair_up() -> None:
    with pytest.raises(ValueError):
        ResponseEncoder(CATALOG).encode(["v1", "é-2"], [0.5], "")
