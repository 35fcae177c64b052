"""Client library for the recommendation service: sync and asyncio, one error type.

from client import RecsClient
with RecsClient("127.0.0.1:50051") as recs:
    for item in recs.recommend("user-1", num_results=10).items:
        print(item.item_id, item.title, item.score)
"""

from client.aio import AsyncRecsClient
from client.errors import RecsError
from client.sync import RecsClient
from client.types import Item, ModelInfo, Result

__all__ = ["AsyncRecsClient", "Item", "ModelInfo", "RecsClient", "RecsError", "Result"]
