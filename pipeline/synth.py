"""`recs synth`: a synthetic short-video platform's raw watch log and catalog.

The world (fixed by the seed):
- categories: up to 20 topics (comedy, music, pets, ...); each video has a primary
  topic and, for 40% of videos, a secondary one.
- videos: short-video durations (log-normal, median about 25 s, 5 s to 3 min), a
  hidden quality, and long-tail popularity (Zipf over a random order, times quality);
  created during the 90 days before the log starts; titles made of topic words; URLs
  `https://<bucket>.s3.amazonaws.com/shortVideos/<item_id>.mp4`.
- users: tastes concentrated on a few topics (Dirichlet, alpha 0.15) and a long-tail
  activity level (log-normal), which decides who produces the events. With `drift` > 0,
  each user also has a second taste (drawn the same way) that grows over the log: at the
  share s of the time span (0 at the start, 1 at the end), a topic pick follows the new
  taste with probability drift x s, and how much they like a video follows the mix of both
  tastes, so the newest events say most about what a user wants now (interest drift, as
  short-video users show). Drift 0 (the default) keeps every taste fixed.

Each event: a user (by activity) picks a topic from their tastes (80%) or browses the
global feed (20%), then a video of that topic by popularity. How much of it they watch
follows how much they like its topics plus its quality and noise, so `watched` (more
than half watched) carries the taste signal; loved videos are sometimes re-watched
(ratio above 1.0). Timestamps spread evenly over `days` days ending 2024-03-01 UTC and
the log is written in time order.

Events are generated and written in chunks of a fixed size, each from its own random
stream derived from the seed, so memory stays flat and the same seed gives the same
bytes for any size. Drift draws from streams of its own, so the other draws (and the
bytes of drift 0) do not depend on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recs.pipeline.output import CsvFileWriter, write_csv

WATCH_LOG_FILE = "watch_log.csv"
CATALOG_FILE = "items.csv"
END_TIME = 1_709_251_200  # 2024-03-01T00:00:00Z
DAY = 86_400
CHUNK_EVENTS = 1_000_000
EXPLORE_SHARE = 0.2
SECONDARY_TOPIC_SHARE = 0.4
REWATCH_SHARE = 0.15  # of videos watched almost fully
# Watch share = sigmoid(LIKING_WEIGHT * log(topic liking) + quality + noise + WATCH_BIAS).
LIKING_WEIGHT = 1.0
WATCH_NOISE = 1.0
WATCH_BIAS = -1.2

TOPICS: dict[str, list[str]] = {
    "comedy": ["prank", "sketch", "stand-up bit", "fail compilation"],
    "music": ["cover", "live session", "beat", "duet"],
    "dance": ["dance challenge", "choreography", "routine"],
    "pets": ["cat", "puppy", "parrot", "hamster"],
    "food": ["recipe", "street food tour", "taste test", "baking"],
    "travel": ["city walk", "island trip", "hidden beach", "road trip"],
    "sports": ["trick shot", "highlight", "workout", "goal"],
    "gaming": ["speedrun", "boss fight", "gameplay clip", "build"],
    "beauty": ["makeup look", "skincare routine", "hair tutorial"],
    "fashion": ["outfit", "thrift haul", "styling tip"],
    "tech": ["gadget review", "unboxing", "coding tip", "setup tour"],
    "diy": ["craft", "home fix", "woodwork", "upcycle"],
    "fitness": ["home workout", "yoga flow", "stretch", "hiit"],
    "news": ["explainer", "daily brief", "interview"],
    "education": ["science fact", "history story", "math trick", "language tip"],
    "cars": ["car review", "drift", "restoration", "road test"],
    "nature": ["wildlife", "sunset timelapse", "forest walk", "storm"],
    "kids": ["cartoon", "toy review", "story time"],
    "art": ["speed painting", "sketchbook", "pottery", "calligraphy"],
    "movies": ["trailer reaction", "scene breakdown", "fan edit"],
}
ADJECTIVES = [
    "Amazing", "Funny", "Quick", "Relaxing", "Epic", "Tiny", "Weird", "Perfect",
    "Satisfying", "Unexpected", "Classic", "Daily", "Ultimate", "Cozy", "Wild",
]  # fmt: skip


@dataclass(frozen=True)
class SynthConfig:
    """Size and seed of a synthetic world."""

    users: int = 2000
    items: int = 1000
    events: int = 100_000
    seed: int = 7
    days: int = 56
    bucket: str = "recs-demo-videos"
    drift: float = 0.0

    def __post_init__(self) -> None:
        for name in ("users", "items", "events", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"--seed must not be negative, got {self.seed}")
        if not 0.0 <= self.drift <= 1.0:
            raise ValueError(f"--drift must be between 0 and 1, got {self.drift}")


@dataclass(frozen=True)
class World:
    """The hidden truth behind the generated log."""

    topic_names: list[str]
    item_topic: np.ndarray  # primary topic per video
    item_second_topic: np.ndarray  # secondary topic, or -1
    item_quality: np.ndarray
    item_popularity: np.ndarray  # sampling weight, sums to 1
    item_duration: np.ndarray  # int seconds
    user_taste: np.ndarray  # users x topics, rows sum to 1
    user_activity: np.ndarray  # sampling weight, sums to 1
    user_new_taste: np.ndarray  # the taste that grows with drift, users x topics


def build_world(config: SynthConfig) -> World:
    """Draw topics, videos and users from the seed."""
    rng = np.random.default_rng([config.seed, 0])
    topics = list(TOPICS)[: min(len(TOPICS), config.items)]
    k = len(topics)
    topic_share = rng.dirichlet(np.full(k, 2.0))
    item_topic = rng.choice(k, size=config.items, p=topic_share)
    item_topic[:k] = np.arange(k)  # every topic has a video
    second = rng.choice(k, size=config.items)
    has_second = (rng.random(config.items) < SECONDARY_TOPIC_SHARE) & (second != item_topic)
    item_second = np.where(has_second, second, -1)
    quality = rng.normal(0.0, 0.5, size=config.items)
    rank = rng.permutation(config.items) + 1
    popularity = rank**-1.0 * np.exp(quality)
    duration = np.clip(np.round(rng.lognormal(np.log(25.0), 0.6, config.items)), 5, 180)
    taste = rng.dirichlet(np.full(k, 0.15), size=config.users)
    activity = rng.lognormal(0.0, 1.0, size=config.users)
    new_taste = rng.dirichlet(np.full(k, 0.15), size=config.users)  # last: changes no other draw
    return World(
        topic_names=topics,
        item_topic=item_topic,
        item_second_topic=item_second,
        item_quality=quality,
        item_popularity=popularity / popularity.sum(),
        item_duration=duration.astype(np.int64),
        user_taste=taste,
        user_activity=activity / activity.sum(),
        user_new_taste=new_taste,
    )


def synthesize(
    config: SynthConfig, out_dir: str | Path, progress: Callable[[int], None] | None = None
) -> list[Path]:
    """Write `watch_log.csv` and `items.csv` into `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    world = build_world(config)
    catalog_path = out / CATALOG_FILE
    write_csv(catalog_table(config, world), catalog_path)
    log_path = out / WATCH_LOG_FILE
    sampler = _EventSampler(world)
    item_names = _names("v", config.items)
    user_names = _names("u", config.users)
    schema = pa.schema(
        [
            ("user_id", pa.string()),
            ("item_id", pa.string()),
            ("timestamp", pa.int64()),
            ("watch_duration", pa.float64()),
            ("video_duration", pa.int64()),
        ]
    )
    start = END_TIME - config.days * DAY
    chunks = -(-config.events // CHUNK_EVENTS)
    with CsvFileWriter(log_path, schema) as writer:
        for chunk in range(chunks):
            size = min(CHUNK_EVENTS, config.events - chunk * CHUNK_EVENTS)
            rng = np.random.default_rng([config.seed, 1, chunk])
            users, items, watch = sampler.sample(rng, size)
            # This chunk's slice of the time span, in time order.
            low = start + (END_TIME - start) * chunk // chunks
            high = start + (END_TIME - start) * (chunk + 1) // chunks
            times = rng.integers(low, high, size=size)
            if config.drift > 0:
                share = (times - start) / max(END_TIME - start, 1)
                drift_rng = np.random.default_rng([config.seed, 3, chunk])
                items, watch = sampler.drifted(drift_rng, users, items, config.drift * share)
            order = np.argsort(times, kind="stable")
            users, items, watch, times = users[order], items[order], watch[order], times[order]
            batch = pa.record_batch(
                [
                    user_names.take(pa.array(users)),
                    item_names.take(pa.array(items)),
                    pa.array(times, pa.int64()),
                    pa.array(watch, pa.float64()),
                    pa.array(world.item_duration[items], pa.int64()),
                ],
                schema=schema,
            )
            writer.write(batch)
            if progress is not None:
                progress(size)
    return [log_path, catalog_path]


def catalog_table(config: SynthConfig, world: World) -> pa.Table:
    """The raw catalog: item_id,title,duration,categories,url,creation_time."""
    rng = np.random.default_rng([config.seed, 2])
    n = config.items
    names = _names("v", n)
    topic_names = pa.array(world.topic_names, pa.string())
    # Title: "<adjective> <a word of the video's topic> #<number>".
    nouns = [TOPICS[name] for name in world.topic_names]
    noun_count = np.array([len(words) for words in nouns])
    noun_start = np.concatenate([[0], np.cumsum(noun_count)[:-1]])
    noun_pick = (
        noun_start[world.item_topic] + rng.integers(0, 1 << 30, n) % noun_count[world.item_topic]
    )
    adjectives = pa.array(ADJECTIVES).take(pa.array(rng.integers(0, len(ADJECTIVES), n)))
    words = pa.array([word for group in nouns for word in group]).take(pa.array(noun_pick))
    numbers = pa.array(np.arange(1, n + 1)).cast(pa.string())
    titles = pc.binary_join_element_wise(
        adjectives, words, pc.binary_join_element_wise("#", numbers, ""), " "
    )
    primary = topic_names.take(pa.array(world.item_topic))
    secondary = topic_names.take(pa.array(np.maximum(world.item_second_topic, 0)))
    categories = pc.if_else(
        pa.array(world.item_second_topic >= 0),
        pc.binary_join_element_wise(primary, secondary, "|"),
        primary,
    )
    start = END_TIME - config.days * DAY
    created = rng.integers(start - 90 * DAY, start, size=n)
    created_text = pc.strftime(
        pa.array(created, pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        format="%Y-%m-%dT%H:%M:%SZ",
    )
    urls = pc.binary_join_element_wise(
        f"https://{config.bucket}.s3.amazonaws.com/shortVideos/", names, ".mp4", ""
    )
    return pa.table(
        {
            "item_id": names,
            "title": titles,
            "duration": pa.array(world.item_duration, pa.int64()),
            "categories": categories,
            "url": urls,
            "creation_time": created_text,
        }
    )


class _EventSampler:
    """Vectorised draws of (user, video, watch seconds) from a world."""

    def __init__(self, world: World) -> None:
        self.world = world
        k = len(world.topic_names)
        self.user_cdf = np.cumsum(world.user_activity)
        self.item_cdf = np.cumsum(world.item_popularity)
        # Row u of the taste CDF shifted by u: one sorted array serves every user.
        self.taste_flat = _shifted_cdf(world.user_taste)
        self.new_taste_flat = _shifted_cdf(world.user_new_taste)
        self.k = k
        # Videos grouped by primary topic, with popularity CDFs shifted by topic likewise.
        self.by_topic = np.argsort(world.item_topic, kind="stable")
        topic_sorted = world.item_topic[self.by_topic]
        weights = world.item_popularity[self.by_topic]
        totals = np.bincount(topic_sorted, weights=weights, minlength=k)
        within = np.cumsum(weights) - np.concatenate([[0.0], np.cumsum(totals)[:-1]])[topic_sorted]
        self.topic_flat = topic_sorted + within / totals[topic_sorted]

    def sample(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, ...]:
        """(users, items, watch seconds) of `size` events, tastes fixed."""
        w = self.world
        # Sorted users make the look-ups below cache friendly; the caller orders events
        # by their independently drawn times, so nothing of this order survives.
        users = np.sort(_draw(self.user_cdf, np.sort(rng.random(size))))
        browsing = rng.random(size) < EXPLORE_SHARE
        items = np.empty(size, dtype=np.int64)
        items[browsing] = _draw(self.item_cdf, rng.random(int(browsing.sum())))
        fans = users[~browsing]
        topic = np.searchsorted(self.taste_flat, fans + rng.random(len(fans))) - fans * self.k
        topic = np.clip(topic, 0, self.k - 1)
        position = np.searchsorted(self.topic_flat, topic + rng.random(len(fans)))
        items[~browsing] = self.by_topic[np.minimum(position, len(self.by_topic) - 1)]
        return users, items, self._watch(rng, items, lambda topics: w.user_taste[users, topics])

    def drifted(
        self, rng: np.random.Generator, users: np.ndarray, items: np.ndarray, pull: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The events of `users` again with each one's new taste pulling with weight `pull`:
        that share of the picks (a coin per event) is a video of a topic of the new taste,
        and every watch time follows the mixed taste. Returns (items, watch seconds)."""
        w = self.world
        items = items.copy()
        moved = np.flatnonzero(rng.random(len(users)) < pull)
        movers = users[moved]
        topic = (
            np.searchsorted(self.new_taste_flat, movers + rng.random(len(moved))) - movers * self.k
        )
        topic = np.clip(topic, 0, self.k - 1)
        position = np.searchsorted(self.topic_flat, topic + rng.random(len(moved)))
        items[moved] = self.by_topic[np.minimum(position, len(self.by_topic) - 1)]

        def mixed(topics: np.ndarray) -> np.ndarray:
            old, new = w.user_taste[users, topics], w.user_new_taste[users, topics]
            return (1.0 - pull) * old + pull * new

        return items, self._watch(rng, items, mixed)

    def _watch(
        self,
        rng: np.random.Generator,
        items: np.ndarray,
        taste: Callable[[np.ndarray], np.ndarray],
    ) -> np.ndarray:
        """Watch seconds of each event; `taste(topics)` is each event's user's liking of the
        topic given per event."""
        w = self.world
        size = len(items)
        first = taste(w.item_topic[items])
        second_topic = w.item_second_topic[items]
        second = np.where(second_topic >= 0, taste(np.maximum(second_topic, 0)), 0)
        affinity = self.k * np.maximum(first, second)  # 1.0 = an average topic for this user
        score = (
            LIKING_WEIGHT * np.log(affinity + 0.1)
            + w.item_quality[items]
            + rng.normal(0.0, WATCH_NOISE, size)
            + WATCH_BIAS
        )
        ratio = 1.05 / (1.0 + np.exp(-score))
        loops = (ratio > 0.95) & (rng.random(size) < REWATCH_SHARE)
        ratio = ratio + np.where(loops, rng.gamma(1.0, 0.8, size), 0.0)
        return np.round(ratio * w.item_duration[items], 1)


def _shifted_cdf(taste: np.ndarray) -> np.ndarray:
    """Row u of the taste CDF shifted by u: one sorted array serves every user."""
    cdf = np.cumsum(taste, axis=1)
    cdf /= cdf[:, -1:]
    return (cdf + np.arange(len(cdf))[:, None]).ravel()


def _draw(cdf: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, uniform * cdf[-1], side="right"), len(cdf) - 1)


def _names(prefix: str, count: int) -> pa.Array:
    numbers = pa.array(np.arange(1, count + 1), pa.int64()).cast(pa.string())
    return pc.binary_join_element_wise(prefix, numbers, "")
