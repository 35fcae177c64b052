"""Client library for the recommendation service: sync and asyncio, one error type.

from recs.client import CatalogItem, Event, RecsClient, filter_value
with RecsClient("127.0.0.1:50051") as recs:
    for item in recs.recommend("user-1", num_results=10).items:
        print(item.item_id, item.title, item.score)
    recs.recommend(
        "user-1", filter_name="by_category",
        filter_values={"CATEGORIES": filter_value("comedy", "gaming")},
    )
    recs.put_events("session-9", [Event("watched", "v7", event_value=0.8)], user_id="user-1")
    recs.put_items([CatalogItem("v8", title="New video", properties={"CATEGORIES": "pets"})])
"""

from recs.client.aio import AsyncRecsClient
from recs.client.errors import RecsError
from recs.client.filters import filter_value
from recs.client.sync import RecsClient
from recs.client.types import CatalogItem, Event, Item, ModelInfo, Result

__all__ = [
    "AsyncRecsClient",
    "CatalogItem",
    "Event",
    "Item",
    "ModelInfo",
    "RecsClient",
    "RecsError",
    "Result",
    "filter_value",
]
