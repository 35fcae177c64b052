"""Training parameters of the local engine, with documented defaults.

One `TrainParams` drives everything `recs train` fits: the ALS model (users, re-ranking),
the confidence each interaction carries (per event type) and the item-item neighbours
that emulate SIMS. `recs train --params FILE` reads it from JSON or TOML; the tuner
writes the same file format.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recs.pipeline.dataset import EVENT_CLICKED, EVENT_WATCHED, VOD_EVENT_CLICK, VOD_EVENT_WATCH

SimilarMethod = Literal["cosine", "bm25", "als"]

# A completed view says more than a click: watched counts twice as much by default. The
# VIDEO_ON_DEMAND domain's names for the same two labels (`recs prepare --domain
# video-on-demand`) weigh the same, so either dataset trains the same model.
# `weight_of` matches event types exactly (case-sensitively), hence both spellings.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    EVENT_WATCHED: 2.0,
    EVENT_CLICKED: 1.0,
    VOD_EVENT_WATCH: 2.0,
    VOD_EVENT_CLICK: 1.0,
}


class ParamsError(ValueError):
    """A parameters file is missing, unreadable or holds invalid values (message names it)."""


class TrainParams(BaseModel):
    """Everything that shapes a trained local model.

    Confidence of a (user, item) pair is the sum over its events of
    `event_weights[EVENT_TYPE]` (or `default_event_weight` for a type not listed), each
    multiplied by EVENT_VALUE when `use_event_value` is set and by the recency factor when
    `recency_half_life` is set; ALS then scales it by `alpha`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    factors: int = Field(64, ge=1, le=1024, description="latent factors of the ALS model")
    regularization: float = Field(0.5, ge=0.0, description="ALS L2 regularization")
    alpha: float = Field(
        2.0, gt=0.0, description="confidence scaling: ALS sees alpha * summed event weights"
    )
    iterations: int = Field(15, ge=1, le=1000, description="ALS iterations")
    event_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_EVENT_WEIGHTS),
        description="confidence added by one event of each EVENT_TYPE",
    )
    default_event_weight: float = Field(
        1.0, ge=0.0, description="weight of an event whose EVENT_TYPE is not in event_weights"
    )
    use_event_value: bool = Field(
        True, description="multiply each event's weight by its EVENT_VALUE (watch ratio)"
    )
    recency_half_life: float | None = Field(
        None,
        gt=0.0,
        description="halve an event's weight for every this many newer events of the same "
        "user (Personalize's recency emphasis); None weighs old and new alike",
    )
    similar_method: SimilarMethod = Field(
        "cosine",
        description="similar items: 'cosine' or 'bm25' item-item co-occurrence, "
        "or 'als' (cosine of ALS item factors)",
    )
    similar_use_confidence: bool = Field(
        False,
        description="weigh co-occurrence by confidence; by default each user counts once "
        "per item, as SIMS counts co-interactions",
    )
    similar_neighbours: int = Field(
        100, ge=1, le=2000, description="similar items kept per item (K), precomputed"
    )
    random_state: int = Field(42, description="seed of the ALS initial factors")
    log_normalizers: bool = Field(
        False,
        description="store each user's softmax log-normaliser with the model, so serving "
        "skips an exp pass over the catalog per call; off by default: it costs about one "
        "exp per user-item pair at training and bought no measurable serving throughput "
        "(bench/README.md: training and catalog size)",
    )

    @classmethod
    def from_file(cls, path: str | Path) -> TrainParams:
        """Read parameters from a JSON (`.json`) or TOML (any other suffix) file.

        Keys are the field names at the top level; unknown keys are errors, so a typo is
        never silently ignored.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ParamsError(f"{path}: cannot read parameters ({exc.__class__.__name__})") from exc
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ParamsError(f"{path}: not valid {_format_name(path)}: {exc}") from exc
        if not isinstance(data, dict):
            raise ParamsError(f"{path}: expected a table of parameters at the top level")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}"
                for err in exc.errors()
            )
            raise ParamsError(f"{path}: invalid parameters: {problems}") from exc

    def weight_of(self, event_type: str) -> float:
        """The confidence one event of `event_type` adds."""
        return self.event_weights.get(event_type, self.default_event_weight)


def _format_name(path: Path) -> str:
    return "JSON" if path.suffix.lower() == ".json" else "TOML"
