"""The labelling rule: how much of a video was watched decides `watched` or `clicked`.

ratio = watch_duration / video_duration (the unit cancels out)

- EVENT_TYPE is `watched` when ratio > threshold (strictly; default 0.5), else `clicked`.
  A ratio exactly at the threshold is `clicked`.
- EVENT_VALUE is the ratio. Re-watches make it exceed 1.0 (a 10 s clip looped three
  times gives 3.0); they are `watched` and keep their ratio, because watching again is
  a stronger signal than watching once. The value is capped at `max_event_value`
  (default 5.0) so that a clip left looping cannot outweigh everything else in a
  model that uses EVENT_VALUE as a weight; `recs prepare` reports how many rows were
  re-watches and how many were capped. The label is decided on the uncapped ratio.
- In the VIDEO_ON_DEMAND domain (`recs prepare --domain video-on-demand`) the same rule
  names the two types `Watch` and `Click`, the domain's event types.
- A zero or missing video duration has no ratio: such rows are rejected before
  labelling (see `pipeline.watchlog`), never given a guessed value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from recs.pipeline.dataset import EVENT_CLICKED, EVENT_WATCHED

DEFAULT_THRESHOLD = 0.5
DEFAULT_MAX_EVENT_VALUE = 5.0

_EVENT_NAMES = pa.array([EVENT_CLICKED, EVENT_WATCHED], pa.string())


@dataclass(frozen=True)
class Labels:
    """Labels of a batch of rows."""

    event_type: pa.Array  # "watched" / "clicked" (or the names given)
    event_value: np.ndarray  # float64 ratio, capped
    watched: int  # rows labelled watched
    rewatched: int  # rows with ratio > 1.0
    capped: int  # rows whose value was capped


def label(
    ratio: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    max_event_value: float = DEFAULT_MAX_EVENT_VALUE,
    event_names: tuple[str, str] | None = None,
) -> Labels:
    """Apply the rule above to an array of watch ratios; `event_names` (watched, clicked)
    renames the two types (the VIDEO_ON_DEMAND domain's `Watch`, `Click`)."""
    names = _EVENT_NAMES
    if event_names is not None:
        names = pa.array([event_names[1], event_names[0]], pa.string())
    watched = ratio > threshold
    event_type = names.take(pa.array(watched.astype(np.int8)))
    capped = ratio > max_event_value
    return Labels(
        event_type=event_type,
        event_value=np.minimum(ratio, max_event_value),
        watched=int(np.count_nonzero(watched)),
        rewatched=int(np.count_nonzero(ratio > 1.0)),
        capped=int(np.count_nonzero(capped)),
    )
