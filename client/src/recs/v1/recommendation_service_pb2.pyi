import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecommendedItem(_message.Message):
    __slots__ = ("item_id", "score", "title", "url", "metadata", "reason")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    score: float
    title: str
    url: str
    metadata: _containers.ScalarMap[str, str]
    reason: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, item_id: _Optional[str] = ..., score: _Optional[float] = ..., title: _Optional[str] = ..., url: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., reason: _Optional[_Iterable[str]] = ...) -> None: ...

class GetRecommendationsRequest(_message.Message):
    __slots__ = ("user_id", "num_results", "filter_name", "filter_values")
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    FILTER_NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    num_results: int
    filter_name: str
    filter_values: _containers.ScalarMap[str, str]
    def __init__(self, user_id: _Optional[str] = ..., num_results: _Optional[int] = ..., filter_name: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetRecommendationsResponse(_message.Message):
    __slots__ = ("items", "recommendation_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    recommendation_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., recommendation_id: _Optional[str] = ...) -> None: ...

class GetSimilarItemsRequest(_message.Message):
    __slots__ = ("item_id", "num_results", "filter_name", "filter_values", "user_id")
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    FILTER_NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    num_results: int
    filter_name: str
    filter_values: _containers.ScalarMap[str, str]
    user_id: str
    def __init__(self, item_id: _Optional[str] = ..., num_results: _Optional[int] = ..., filter_name: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ..., user_id: _Optional[str] = ...) -> None: ...

class GetSimilarItemsResponse(_message.Message):
    __slots__ = ("items", "recommendation_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    recommendation_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., recommendation_id: _Optional[str] = ...) -> None: ...

class GetPopularItemsRequest(_message.Message):
    __slots__ = ("num_results", "user_id", "filter_name", "filter_values")
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NUM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    num_results: int
    user_id: str
    filter_name: str
    filter_values: _containers.ScalarMap[str, str]
    def __init__(self, num_results: _Optional[int] = ..., user_id: _Optional[str] = ..., filter_name: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetPopularItemsResponse(_message.Message):
    __slots__ = ("items", "recommendation_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    recommendation_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., recommendation_id: _Optional[str] = ...) -> None: ...

class GetTrendingItemsRequest(_message.Message):
    __slots__ = ("num_results", "user_id", "filter_name", "filter_values")
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NUM_RESULTS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    num_results: int
    user_id: str
    filter_name: str
    filter_values: _containers.ScalarMap[str, str]
    def __init__(self, num_results: _Optional[int] = ..., user_id: _Optional[str] = ..., filter_name: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetTrendingItemsResponse(_message.Message):
    __slots__ = ("items", "recommendation_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    recommendation_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., recommendation_id: _Optional[str] = ...) -> None: ...

class GetPersonalizedRankingRequest(_message.Message):
    __slots__ = ("user_id", "item_ids", "filter_name", "filter_values")
    class FilterValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_VALUES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    item_ids: _containers.RepeatedScalarFieldContainer[str]
    filter_name: str
    filter_values: _containers.ScalarMap[str, str]
    def __init__(self, user_id: _Optional[str] = ..., item_ids: _Optional[_Iterable[str]] = ..., filter_name: _Optional[str] = ..., filter_values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetPersonalizedRankingResponse(_message.Message):
    __slots__ = ("items", "recommendation_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    recommendation_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., recommendation_id: _Optional[str] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("backend", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    backend: str
    details: _containers.ScalarMap[str, str]
    def __init__(self, backend: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("event_id", "event_type", "event_value", "item_id", "sent_at", "recommendation_id", "impression")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_VALUE_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    IMPRESSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    event_value: float
    item_id: str
    sent_at: _timestamp_pb2.Timestamp
    recommendation_id: str
    impression: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., event_value: _Optional[float] = ..., item_id: _Optional[str] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recommendation_id: _Optional[str] = ..., impression: _Optional[_Iterable[str]] = ...) -> None: ...

class PutEventsRequest(_message.Message):
    __slots__ = ("user_id", "session_id", "events")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    session_id: str
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class PutEventsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CatalogItem(_message.Message):
    __slots__ = ("item_id", "title", "url", "properties")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    title: str
    url: str
    properties: _containers.ScalarMap[str, str]
    def __init__(self, item_id: _Optional[str] = ..., title: _Optional[str] = ..., url: _Optional[str] = ..., properties: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PutItemsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CatalogItem]
    def __init__(self, items: _Optional[_Iterable[_Union[CatalogItem, _Mapping]]] = ...) -> None: ...

class PutItemsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
