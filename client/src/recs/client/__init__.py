"""Client library for the recommendation service: sync and asyncio, one error type.

from recs.client import RecsClient
with RecsClient("127.0.0.1:50051") as recs:
    for item in recs.recommend("user-1", num_results=10).items:
        print(item.item_id, item.title, item.score)
"""

from recs.client.aio import AsyncRecsClient
from recs.client.errors import RecsError
from recs.client.sync import RecsClient
from recs.client.types import Item, ModelInfo, Result

__all__ = ["AsyncRecsClient", "Item", "ModelInfo", "RecsClient", "RecsError", "Result"]
