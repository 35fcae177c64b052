"""The `[personalize]` section of the serve config, validated before the backend starts."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from recs.backends.base import MAX_ID_LENGTH
from recs.pipeline.filters import MAX_NAME_LENGTH as MAX_FILTER_NAME_LENGTH

# Personalize's own ARN constraint (service model shape `Arn`: max 256 characters).
ARN_PATTERN = r"^arn:([a-z\d-]+):personalize:.*:.*:.+$"
Arn = Annotated[str, Field(pattern=ARN_PATTERN, max_length=256)]
# A filter's name as requests give it (the key of [filters]): CreateFilter's 1-63 characters.
FilterName = Annotated[str, Field(min_length=1, max_length=MAX_FILTER_NAME_LENGTH)]
FILTER_ARNS_KEY = "filter_arns"
# PutEvents' trackingId: the event tracker's id (CreateEventTracker returns it), 1-256.
TrackingId = Annotated[str, Field(min_length=1, max_length=256)]
EVENT_TRACKING_ID_KEY = "event_tracking_id"
ITEMS_DATASET_ARN_KEY = "items_dataset_arn"

# One campaign per RPC; these are the config keys, in the order the RPCs are documented.
CAMPAIGN_KEYS = (
    "user_personalization_campaign_arn",
    "similar_items_campaign_arn",
    "popularity_campaign_arn",
    "trending_now_campaign_arn",
    "personalized_ranking_campaign_arn",
)

# [personalize.recommender_arns]: Personalize's VIDEO_ON_DEMAND recommenders (domain dataset
# group), called with GetRecommendations(recommenderArn=...) instead of a campaign.
RECOMMENDER_ARNS_KEY = "recommender_arns"
RecommenderKey = Literal[
    "recommendations",  # Top picks for you (aws-vod-top-picks): GetRecommendations
    "similar_items",  # Because you watched X (aws-vod-because-you-watched-x): GetSimilarItems
    "more_like_x",  # More like X (aws-vod-more-like-x): recorded; copied to similar_items to serve
    "popular_items",  # Most popular (aws-vod-most-popular): GetPopularItems
    "trending_items",  # Trending now (aws-vod-trending-now): GetTrendingItems
]
RECOMMENDER_KEYS: tuple[str, ...] = get_args(RecommenderKey)
# The recommender key answering an RPC instead of its campaign (`f"{stem}_campaign_arn"`) when
# set; GetPersonalizedRanking has no VIDEO_ON_DEMAND use case and keeps its campaign.
RECOMMENDER_FOR_CAMPAIGN: dict[str, RecommenderKey] = {
    "user_personalization": "recommendations",
    "similar_items": "similar_items",
    "popularity": "popular_items",
    "trending_now": "trending_items",
}
# The GetRecommendations members each use case requires, from "VIDEO_ON_DEMAND use cases"
# (https://docs.aws.amazon.com/personalize/latest/dg/VIDEO_ON_DEMAND-use-cases.html):
# Because you watched X and More like X need userId and itemId (they leave out the videos that
# user watched); Most popular and Top picks for you need userId, itemId not used; Trending now
# needs userId "only if you filter by CurrentUser or by items a user has interacted with",
# itemId not used.
RECOMMENDER_REQUIRES: dict[str, tuple[str, ...]] = {
    "recommendations": ("userId",),
    "similar_items": ("userId", "itemId"),
    "more_like_x": ("userId", "itemId"),
    "popular_items": ("userId",),
    "trending_items": (),
}


class PersonalizeBackendConfig(BaseModel):
    """Where the campaigns (one per RPC), the filters, the event tracker and the Items dataset live,
    and how the runtime and events clients talk to them.

    Unknown keys are rejected (a typo in a campaign key would otherwise silently leave
    an RPC unconfigured). Credentials are never configured here: the standard AWS
    credential chain (env, profile, instance role) is used.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str | None = Field(
        None,
        min_length=1,
        description="AWS region of the campaigns; None uses the standard chain "
        "(AWS_REGION, AWS_DEFAULT_REGION, profile)",
    )
    user_personalization_campaign_arn: Arn | None = Field(
        None, description="aws-user-personalization campaign answering GetRecommendations"
    )
    similar_items_campaign_arn: Arn | None = Field(
        None, description="aws-sims campaign answering GetSimilarItems"
    )
    popularity_campaign_arn: Arn | None = Field(
        None, description="aws-popularity-count campaign answering GetPopularItems"
    )
    trending_now_campaign_arn: Arn | None = Field(
        None, description="aws-trending-now campaign answering GetTrendingItems"
    )
    personalized_ranking_campaign_arn: Arn | None = Field(
        None, description="aws-personalized-ranking campaign answering GetPersonalizedRanking"
    )
    recommender_arns: dict[RecommenderKey, Arn] = Field(
        default_factory=dict,
        description="VIDEO_ON_DEMAND recommenders answering RPCs instead of their campaigns: "
        "recommendations (Top picks for you), similar_items (Because you watched X, or More "
        "like X), popular_items (Most popular), trending_items (Trending now); more_like_x "
        "records the More like X recommender (it answers nothing until copied to similar_items)",
    )
    filter_arns: dict[FilterName, Arn] = Field(
        default_factory=dict,
        description="filter name (as in [filters] and requests' filter_name) -> the ARN of "
        "that Personalize filter; `recs personalize provision` writes them",
    )
    event_tracking_id: TrackingId | None = Field(
        None,
        description="trackingId of the dataset group's event tracker, for PutEvents; "
        "`recs personalize provision` writes it",
    )
    items_dataset_arn: Arn | None = Field(
        None,
        description="the dataset group's Items dataset, for PutItems; "
        "`recs personalize provision` writes it",
    )
    users_dataset_arn: Arn | None = Field(
        None,
        description="the dataset group's Users dataset: the ARN PutUsers names on the "
        "AWS-protocol endpoint (`recs serve --aws-port`)",
    )
    endpoint_url: HttpUrl | None = Field(
        None,
        description="runtime endpoint instead of AWS's (an emulator, a VPC endpoint); "
        "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME works too",
    )
    events_endpoint_url: HttpUrl | None = Field(
        None,
        description="personalize-events endpoint instead of AWS's (PutEvents, PutItems); "
        "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS works too",
    )
    connect_timeout: float = Field(2.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(5.0, gt=0, description="seconds to wait for an answer")
    retry_mode: Literal["standard", "adaptive", "legacy"] = Field(
        "standard", description="botocore retry mode for throttling and server errors"
    )
    max_attempts: int = Field(
        3, ge=1, le=10, description="total attempts per call, first one included"
    )
    max_concurrency: int = Field(
        16, ge=1, le=1000, description="calls in flight towards Personalize (and HTTP pool size)"
    )
    queue_timeout: float = Field(
        5.0,
        ge=0,
        description="seconds a call waits for a free slot before answering UNAVAILABLE",
    )
    fallback: Literal["local"] | None = Field(
        None,
        description="while the breaker is open, answer from the local engine of the [local] "
        "section instead of UNAVAILABLE (marked x-recs-served-by: local)",
    )
    breaker_failures: int = Field(
        5,
        ge=1,
        description="consecutive UNAVAILABLE or timed-out calls that open the circuit breaker",
    )
    breaker_cooldown: float = Field(
        30.0,
        gt=0,
        description="seconds the open breaker answers UNAVAILABLE at once before probing",
    )
    anonymous_user_id: str = Field(
        "anonymous",
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="userId sent to the popularity campaign when the caller gives none",
    )

    def endpoint(self) -> str | None:
        """`endpoint_url` as the plain string botocore wants (None: AWS's own endpoint)."""
        return _plain(self.endpoint_url)

    def events_endpoint(self) -> str | None:
        """`events_endpoint_url` as botocore wants it (None: AWS's own endpoint)."""
        return _plain(self.events_endpoint_url)


def _plain(url: HttpUrl | None) -> str | None:
    return str(url).rstrip("/") if url else None
