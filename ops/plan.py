"""What provisioning builds: resource names derived from one base name, the recipes, filters,
the Trending-Now solution's trend discovery frequency and the User-Personalization campaign's
item exploration; with `--domain video-on-demand`, the VIDEO_ON_DEMAND use cases (one
recommender each) and the check that the dataset was prepared for that domain.

All names derive from `--name`, so a re-run (or `teardown`, or `metrics`) finds the same
resources. Personalize names are 1-63 characters of `[a-zA-Z0-9-_]`, starting with a
letter or digit; the longest derived name adds 22 characters, hence the base name limit.
A filter is named `NAME-<filter name>`, so its name must fit in what is left.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from recs.pipeline.dataset import (
    DOMAIN_VIDEO_ON_DEMAND,
    INTERACTIONS_FILE,
    INTERACTIONS_SCHEMA_FILE,
    ITEMS_FILE,
    ITEMS_SCHEMA_FILE,
    read_domain,
)
from recs.pipeline.filters import Filter, parse_filter

MAX_NAME_LENGTH = 63
MAX_BASE_NAME_LENGTH = 41
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")
CONTENT_TAG_LENGTH = 8
MAX_FILTERS = 10  # per dataset group (../shared/reference/personalize.md, limits)
_FILTER_NAME_PART = re.compile(r"^[a-zA-Z0-9\-_]+$")


@dataclass(frozen=True, slots=True)
class Recipe:
    """One recipe we provision: its ARN, the short name in resource names, its config key."""

    short_name: str
    recipe_arn: str
    campaign_key: str


RECIPES = (
    Recipe(
        "user-personalization",
        "arn:aws:personalize:::recipe/aws-user-personalization",
        "user_personalization_campaign_arn",
    ),
    Recipe("sims", "arn:aws:personalize:::recipe/aws-sims", "similar_items_campaign_arn"),
    Recipe(
        "popularity-count",
        "arn:aws:personalize:::recipe/aws-popularity-count",
        "popularity_campaign_arn",
    ),
    Recipe(
        "trending-now",
        "arn:aws:personalize:::recipe/aws-trending-now",
        "trending_now_campaign_arn",
    ),
    Recipe(
        "personalized-ranking",
        "arn:aws:personalize:::recipe/aws-personalized-ranking",
        "personalized_ranking_campaign_arn",
    ),
)

TRENDING_NOW = next(recipe for recipe in RECIPES if recipe.short_name == "trending-now")
USER_PERSONALIZATION = next(r for r in RECIPES if r.short_name == "user-personalization")

# Domain dataset groups (CreateDatasetGroup's and CreateSchema's `domain`), by the spelling of
# `--domain`. A domain dataset group serves recommenders (CreateRecommender with a use case's
# recipe ARN) instead of solutions and campaigns.
VIDEO_ON_DEMAND = "VIDEO_ON_DEMAND"
DOMAINS = {"video-on-demand": VIDEO_ON_DEMAND}


@dataclass(frozen=True, slots=True)
class UseCase:
    """One domain use case we provision a recommender for: the short name in its resource
    name, its recipe ARN, its key in `[personalize.recommender_arns]`, and whether it takes
    an `itemExplorationConfig` (only use cases recommending for a user do)."""

    short_name: str
    recipe_arn: str
    config_key: str
    explores: bool = False


# The VIDEO_ON_DEMAND use cases and their recipe ARNs
# (https://docs.aws.amazon.com/personalize/latest/dg/VIDEO_ON_DEMAND-use-cases.html). Top picks
# for you is the one personalized use case, hence the one with item exploration
# (RecommenderConfig.itemExplorationConfig: "only if your recommenders generate personalized
# recommendations for a user (not popular items or similar items)", botocore's model).
VOD_USE_CASES = (
    UseCase("top-picks", "arn:aws:personalize:::recipe/aws-vod-top-picks", "recommendations", True),
    UseCase(
        "because-you-watched-x",
        "arn:aws:personalize:::recipe/aws-vod-because-you-watched-x",
        "similar_items",
    ),
    UseCase("more-like-x", "arn:aws:personalize:::recipe/aws-vod-more-like-x", "more_like_x"),
    UseCase("most-popular", "arn:aws:personalize:::recipe/aws-vod-most-popular", "popular_items"),
    UseCase("trending-now", "arn:aws:personalize:::recipe/aws-vod-trending-now", "trending_items"),
)
USE_CASES = {VIDEO_ON_DEMAND: VOD_USE_CASES}
RECOMMENDER_ARNS_KEY = "recommender_arns"  # the serve config's [personalize.recommender_arns]

# What marks a dataset prepared for VIDEO_ON_DEMAND, until `recs prepare --domain
# video-on-demand` names its marker: the domain's event types in the interactions (the use
# cases train on Watch and Click events) or the Items schema's required GENRES column.


def check_domain(domain: str | None) -> str | None:
    """`domain` if it is None (a custom dataset group) or a domain we provision; ValueError
    otherwise."""
    if domain is not None and domain not in USE_CASES:
        raise ValueError(f"domain {domain!r}: use one of {', '.join(DOMAINS)}")
    return domain


def prepared_for_video_on_demand(data_dir: Path) -> bool:
    """Whether `recs prepare --domain video-on-demand` prepared the directory: its
    `dataset.json` names the VIDEO_ON_DEMAND domain (`pipeline.dataset.read_domain`)."""
    return read_domain(data_dir) == DOMAIN_VIDEO_ON_DEMAND


def check_prepared_for_domain(data_dir: Path, domain: str | None) -> None:
    """Refuse (ValueError) a dataset not prepared for `domain`, before any AWS call."""
    if domain == VIDEO_ON_DEMAND and not prepared_for_video_on_demand(data_dir):
        raise ValueError(
            f"{data_dir} was not prepared for the video-on-demand domain (its dataset.json"
            " names no VIDEO_ON_DEMAND domain): run `recs prepare --domain video-on-demand`"
            " first, or provision without --domain"
        )


# The Trending-Now solution's "Trend discovery frequency": a feature transformation
# parameter of CreateSolution, `solutionConfig={"featureTransformationParameters":
# {"trend_discovery_frequency": "1 hour"}}`, one of "30 minutes", "1 hour", "3 hours",
# "1 day" (the boto3 example of
# https://docs.aws.amazon.com/personalize/latest/dg/native-recipe-trending-now.html#trending-now-python
# and aws-samples/amazon-personalize-samples,
# next_steps/core_use_cases/trending_now/trending_now_example.ipynb). Spelt here as the local
# engine's `[local] trend_interval` ("30m", "1h", "3h", "1d"; default "3h"), so one value
# means the same on both engines. It is always sent: the docs disagree on Personalize's own
# default (3 hours in the 2023 guide, 2 hours on the current page).
TREND_DISCOVERY_FREQUENCY_KEY = "trend_discovery_frequency"
TREND_DISCOVERY_FREQUENCIES = {
    "30m": "30 minutes",
    "1h": "1 hour",
    "3h": "3 hours",
    "1d": "1 day",
}
DEFAULT_TREND_INTERVAL = "3h"


def trend_discovery_frequency(interval: str) -> str:
    """AWS's `trend_discovery_frequency` for a trend interval ("3h" -> "3 hours").

    Raises ValueError naming the accepted values.
    """
    try:
        return TREND_DISCOVERY_FREQUENCIES[interval]
    except KeyError:
        raise ValueError(
            f"trend interval {interval!r}: use one of"
            f" {', '.join(TREND_DISCOVERY_FREQUENCIES)} (Personalize's trend discovery"
            " frequencies 30 minutes, 1 hour, 3 hours, 1 day)"
        ) from None


# The User-Personalization campaign's item exploration: CreateCampaign's (and UpdateCampaign's)
# `campaignConfig={"itemExplorationConfig": {"explorationWeight": "0.3",
# "explorationItemAgeCutOff": "30"}}`, a string-to-string map
# (https://docs.aws.amazon.com/personalize/latest/dg/API_CampaignConfig.html). The weight is a
# decimal from 0 (no exploration) to 1, default 0.3; the cutoff the maximum item age in days
# since the latest interaction, default 30, minimum 1 day
# (create-recommender-configure-exploration.html). Personalize accepts it only for
# User-Personalization campaigns. Given as the local engine's `[local] exploration_weight` and
# `exploration_item_age_cutoff`, so one setting means the same on both engines.
ITEM_EXPLORATION_CONFIG_KEY = "itemExplorationConfig"
EXPLORATION_WEIGHT_KEY = "explorationWeight"
EXPLORATION_AGE_CUTOFF_KEY = "explorationItemAgeCutOff"
DEFAULT_EXPLORATION_WEIGHT = 0.3
DEFAULT_EXPLORATION_AGE_CUTOFF = 30.0
MIN_EXPLORATION_AGE_CUTOFF = 1.0  # days: Personalize refuses less


def decimal_text(value: float) -> str:
    """A number as Personalize's string maps take it, without float noise: 30.0 -> "30",
    0.3 -> "0.3", 1 -> "1"."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def check_exploration_weight(weight: float) -> float:
    """`weight` if it is a number from 0 to 1; ValueError naming the range otherwise."""
    if not _is_number(weight) or not 0.0 <= weight <= 1.0:
        raise ValueError(
            f"exploration weight {weight!r}: use a number from 0 (no exploration) to 1"
            f" (Personalize's {EXPLORATION_WEIGHT_KEY})"
        )
    return weight


def check_exploration_age_cutoff(days: float) -> float:
    """`days` if it is a number of days Personalize takes (at least 1); ValueError otherwise."""
    if not _is_number(days) or not MIN_EXPLORATION_AGE_CUTOFF <= days < math.inf:
        raise ValueError(
            f"exploration item age cutoff {days!r}: use a number of days of at least"
            f" {decimal_text(MIN_EXPLORATION_AGE_CUTOFF)} (Personalize's"
            f" {EXPLORATION_AGE_CUTOFF_KEY} has that minimum)"
        )
    return days


def item_exploration_config(weight: float, cutoff_days: float) -> dict[str, str]:
    """The User-Personalization campaign's `itemExplorationConfig` ({"explorationWeight":
    "0.3", "explorationItemAgeCutOff": "30"}), each value checked (ValueError)."""
    return {
        EXPLORATION_WEIGHT_KEY: decimal_text(check_exploration_weight(weight)),
        EXPLORATION_AGE_CUTOFF_KEY: decimal_text(check_exploration_age_cutoff(cutoff_days)),
    }


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One dataset of the prepared directory: its Personalize type and its two files."""

    dataset_type: str  # "Interactions" or "Items", as CreateDataset and the schema name it
    csv_file: str
    schema_file: str

    @property
    def slug(self) -> str:
        """The lower-case type used in resource names (`interactions`)."""
        return self.dataset_type.lower()


INTERACTIONS = DatasetSpec("Interactions", INTERACTIONS_FILE, INTERACTIONS_SCHEMA_FILE)
ITEMS = DatasetSpec("Items", ITEMS_FILE, ITEMS_SCHEMA_FILE)


def check_base_name(name: str) -> str:
    """`name` if every derived resource name will be valid; ValueError naming the rule."""
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"--name {name!r}: use letters, digits, '-' or '_', starting with a letter or digit"
        )
    if len(name) > MAX_BASE_NAME_LENGTH:
        raise ValueError(
            f"--name {name!r} is {len(name)} characters; at most {MAX_BASE_NAME_LENGTH}"
            f" (derived names must stay within Personalize's {MAX_NAME_LENGTH})"
        )
    return name


@dataclass(frozen=True, slots=True)
class Names:
    """Every resource name derived from the base name."""

    base: str

    @property
    def dataset_group(self) -> str:
        return self.base

    def schema(self, dataset: DatasetSpec) -> str:
        """Schemas are account-wide, so their names carry the base name too."""
        return f"{self.base}-{dataset.slug}"

    def dataset(self, dataset: DatasetSpec) -> str:
        return f"{self.base}-{dataset.slug}"

    def import_job(self, dataset: DatasetSpec, content_sha256: str) -> str:
        """One job per file content: the same data is imported once, new data again."""
        return f"{self.base}-{dataset.slug}-{content_sha256[:CONTENT_TAG_LENGTH]}"

    def solution(self, recipe: Recipe) -> str:
        return f"{self.base}-{recipe.short_name}"

    def campaign(self, recipe: Recipe) -> str:
        return f"{self.base}-{recipe.short_name}"

    def recommender(self, use_case: UseCase) -> str:
        """A domain use case's recommender (the longest name: `-because-you-watched-x`)."""
        return f"{self.base}-{use_case.short_name}"

    def filter(self, filter_name: str) -> str:
        """A filter's Personalize name: the base name, then the name requests use."""
        return f"{self.base}-{filter_name}"

    @property
    def event_tracker(self) -> str:
        """The dataset group's one event tracker (PutEvents' trackingId)."""
        return f"{self.base}-events"


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """One filter to provision: the name requests use, its Personalize name, its expression."""

    name: str
    aws_name: str
    filter: Filter

    @property
    def expression(self) -> str:
        return self.filter.expression


def filter_specs(names: Names, expressions: Mapping[str, str]) -> list[FilterSpec]:
    """The filters to create, each expression parsed and every name checked, before any call.

    Raises ValueError naming the filter: an expression Personalize would refuse (with the
    position), a name that cannot become a Personalize name, or more filters than a dataset
    group holds.
    """
    if len(expressions) > MAX_FILTERS:
        raise ValueError(
            f"[filters]: {len(expressions)} filters ({', '.join(sorted(expressions))}); a"
            f" Personalize dataset group holds at most {MAX_FILTERS}"
        )
    specs = []
    for name, expression in expressions.items():
        aws_name = names.filter(name)
        if not _FILTER_NAME_PART.match(name):
            raise ValueError(
                f"[filters] {name!r}: Personalize names it {aws_name!r}; use letters, digits,"
                " '-' or '_' in filter names"
            )
        if len(aws_name) > MAX_NAME_LENGTH:
            raise ValueError(
                f"[filters] {name!r}: its Personalize name {aws_name!r} is {len(aws_name)}"
                f" characters, at most {MAX_NAME_LENGTH}; shorten the filter name or --name"
            )
        specs.append(FilterSpec(name, aws_name, parse_filter(name, expression)))
    return specs


def dataset_specs(data_dir: Path) -> list[DatasetSpec]:
    """The datasets present in a prepared directory: interactions always, items if there.

    A CSV without its schema (or the reverse) is an error rather than a silent skip.
    """
    specs = []
    for spec in (INTERACTIONS, ITEMS):
        csv_exists = (data_dir / spec.csv_file).is_file()
        schema_exists = (data_dir / spec.schema_file).is_file()
        if csv_exists != schema_exists:
            present, absent = (
                (spec.csv_file, spec.schema_file)
                if csv_exists
                else (spec.schema_file, spec.csv_file)
            )
            raise ValueError(f"{data_dir}: {present} is there but {absent} is missing")
        if csv_exists:
            specs.append(spec)
    if INTERACTIONS not in specs:
        raise ValueError(f"{data_dir}: {INTERACTIONS.csv_file} not found (run `recs prepare`)")
    return specs
