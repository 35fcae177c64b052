"""Tuning the local engine on validation users carved from the training users only.

The tuner never sees a test holdout: it receives training data (a split's `train/`) and
measures on *training* users with the evaluation's own protocol (their newest 10% held
out; see `backends.local.validation`). Users are split into two disjoint halves.

1. **Search** (most of the time budget) on the first half: optuna's TPE sampler (seeded)
   proposes factors, regularization, alpha, iterations, a weight per event type, whether
   EVENT_VALUE scales confidence, and the recency half-life. The starting parameters
   (the engine's defaults, or `--params`) are the first trial.
2. **Confirm** on the second half: the starting parameters and the best few of the
   search are re-scored on users the search never saw, and the best of these unbiased
   scores wins (the best of many noisy search scores is always flattered).
3. **Similar items**: with the winner's ALS settings, each item-item neighbourhood
   (cosine or BM25 co-occurrence, binary or confidence-weighted, or ALS factors) is
   scored the way SIMS is used: the neighbours of each validation user's newest input
   item against that user's held-out items.

The objective is Personalize's `normalized_discounted_cumulative_gain_at_10` (any
cut-off metric of `pipeline.evaluation.metrics.recommendation_metrics` can be chosen).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from recs.backends.local.params import TrainParams
from recs.evaluation.metrics import recommendation_metrics
from recs.evaluation.validation import DEFAULT_METRIC, Validation, carve_validation

logger = logging.getLogger(__name__)

CONFIRM_TOP = 3  # search trials re-scored on the confirmation users
SEARCH_SHARE = 0.75  # of the time budget; the rest confirms and picks similar items
MAX_TUNED_EVENT_TYPES = 8  # the most frequent types get a searched weight
# (similar_method, similar_use_confidence) candidates for the neighbourhood.
SIMILAR_CHOICES = (
    ("cosine", False),
    ("cosine", True),
    ("bm25", False),
    ("bm25", True),
    ("als", False),
)

# Progress callback: (stage, steps done, best score so far).
TuneProgress = Callable[[str, int, float], None]


@dataclass
class Trial:
    """One scored parameter set: on the search users, and on the confirmation users."""

    number: int
    params: TrainParams
    score: float
    confirm_score: float | None = None
    seconds: float = 0.0


@dataclass
class TuneResult:
    """What the tuner found, and the evidence."""

    best: TrainParams
    chosen: Trial
    default: Trial
    trials: list[Trial]
    metric: str
    similar_scores: dict[str, float] = field(default_factory=dict)
    validation: dict[str, int] = field(default_factory=dict)
    event_types: list[str] = field(default_factory=list)
    seconds: float = 0.0


class SearchSpace:
    """The parameters searched, derived from the data (its event types and values).

    Bounds are wide on purpose (the same space serves every dataset); numeric ones are
    searched on a log scale.
    """

    FACTORS = (8, 256)
    REGULARIZATION = (1e-3, 30.0)
    ALPHA = (0.1, 100.0)
    ITERATIONS = (4, 30)
    EVENT_WEIGHT = (0.05, 20.0)
    RECENCY_HALF_LIFE = (1.0, 1000.0)  # in events of the same user

    def __init__(self, interactions: pa.Table, base: TrainParams) -> None:
        self.base = base
        self.event_types = _frequent_event_types(interactions)
        self.has_values = _has_varying_values(interactions)

    def suggest(self, trial: Any) -> TrainParams:
        """Ask an optuna trial for one parameter set."""
        values: dict[str, Any] = {
            "factors": trial.suggest_int("factors", *self.FACTORS, log=True),
            "regularization": trial.suggest_float("regularization", *self.REGULARIZATION, log=True),
            "alpha": trial.suggest_float("alpha", *self.ALPHA, log=True),
            "iterations": trial.suggest_int("iterations", *self.ITERATIONS),
        }
        if len(self.event_types) > 1:  # with one type its weight is the same knob as alpha
            weights = dict(self.base.event_weights)
            for event_type in self.event_types:
                weights[event_type] = trial.suggest_float(
                    f"weight:{event_type}", *self.EVENT_WEIGHT, log=True
                )
            values["event_weights"] = weights
        if self.has_values:
            values["use_event_value"] = trial.suggest_categorical("use_event_value", [False, True])
        values["recency_half_life"] = None
        if trial.suggest_categorical("recency", [False, True]):
            values["recency_half_life"] = trial.suggest_float(
                "recency_half_life", *self.RECENCY_HALF_LIFE, log=True
            )
        return self.base.model_copy(update=values)

    def as_trial_values(self, params: TrainParams) -> dict[str, Any]:
        """`params` as optuna trial values, clipped to the bounds (to enqueue the base)."""
        values: dict[str, Any] = {
            "factors": _clip(params.factors, self.FACTORS),
            "regularization": _clip(params.regularization, self.REGULARIZATION),
            "alpha": _clip(params.alpha, self.ALPHA),
            "iterations": _clip(params.iterations, self.ITERATIONS),
            "recency": params.recency_half_life is not None,
        }
        if len(self.event_types) > 1:
            for event_type in self.event_types:
                values[f"weight:{event_type}"] = _clip(
                    params.weight_of(event_type), self.EVENT_WEIGHT
                )
        if self.has_values:
            values["use_event_value"] = params.use_event_value
        if params.recency_half_life is not None:
            values["recency_half_life"] = _clip(params.recency_half_life, self.RECENCY_HALF_LIFE)
        return values


def tune(
    interactions: pa.Table,
    *,
    trials: int | None = 60,
    time_budget: float | None = None,
    seed: int = 0,
    exclude_users: Iterable[str] = (),
    metric: str = DEFAULT_METRIC,
    base: TrainParams | None = None,
    on_progress: TuneProgress | None = None,
) -> TuneResult:
    """Search the local engine's parameters on validation users of `interactions`.

    Stops after `trials` search trials or when `SEARCH_SHARE` of `time_budget` seconds is
    spent, whichever comes first (at least the base and one proposal are tried).
    `exclude_users` (a split's test users) are never drawn as validation users.
    """
    if trials is None and time_budget is None:
        raise ValueError("give trials, a time budget or both")
    _check_metric(metric)
    started = time.perf_counter()
    base = base or TrainParams()
    exclude_users = list(exclude_users)
    search_users, confirm_users = carve_validation(interactions, seed, exclude_users, metric)
    space = SearchSpace(interactions, base)
    report = on_progress or (lambda _stage, _done, _best: None)
    deadline = None if time_budget is None else started + SEARCH_SHARE * time_budget
    history = _search(space, search_users, trials, deadline, seed, report)

    default = history[0]
    finalists = [default] + [
        t for t in sorted(history[1:], key=lambda t: t.score, reverse=True)[:CONFIRM_TOP]
    ]
    for done, trial in enumerate(finalists, start=1):
        out_of_time = time_budget is not None and time.perf_counter() > started + time_budget
        if out_of_time and done > 2:  # the base and the search's best are always confirmed
            logger.info("time budget spent: confirmed %d of %d finalists", done - 1, len(finalists))
            break
        trial.confirm_score = confirm_users.score(trial.params)
        report("confirm", done, max(t.confirm_score or 0.0 for t in finalists))
    chosen = max(
        (t for t in finalists if t.confirm_score is not None),
        key=lambda t: (t.confirm_score, t.score),
    )
    best, similar_scores = _choose_similar(chosen.params, search_users, report)
    return TuneResult(
        best=best,
        chosen=chosen,
        default=default,
        trials=history,
        metric=metric,
        similar_scores=similar_scores,
        validation={
            "search_users": search_users.num_users,
            "confirm_users": confirm_users.num_users,
            "excluded_test_users": len(exclude_users),
        },
        event_types=space.event_types,
        seconds=time.perf_counter() - started,
    )


def _search(
    space: SearchSpace,
    validation: Validation,
    trials: int | None,
    deadline: float | None,
    seed: int,
    report: TuneProgress,
) -> list[Trial]:
    """Optuna TPE trials scored on `validation`; trial 0 is the base parameters."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        # `multivariate` and `group` (conditional parameters such as the recency half-life
        # sampled jointly with the rest) are flagged experimental; their behaviour is what
        # we want, the warning is noise.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(space.as_trial_values(space.base))
    history: list[Trial] = []

    def objective(trial: Any) -> float:
        # Trial 0 is the base itself; its enqueued values only inform the sampler.
        params = space.base if trial.number == 0 else space.suggest(trial)
        trial_started = time.perf_counter()
        score = validation.score(params)
        history.append(
            Trial(trial.number, params, score, seconds=time.perf_counter() - trial_started)
        )
        logger.debug("trial %d: %.4f (%s)", trial.number, score, _describe(params))
        report("search", len(history), max(t.score for t in history))
        return score

    while trials is None or len(history) < trials:
        if deadline is not None and len(history) >= 2 and time.perf_counter() >= deadline:
            break
        study.optimize(objective, n_trials=1)
    return history


def _choose_similar(
    params: TrainParams, validation: Validation, report: TuneProgress
) -> tuple[TrainParams, dict[str, float]]:
    """The neighbourhood whose similar items best predict the next items (SIMS use)."""
    scores = validation.similar_scores(params, SIMILAR_CHOICES)
    (method, use_confidence), best_score = max(scores.items(), key=lambda kv: kv[1])
    report("similar", len(scores), best_score)
    best = params.model_copy(
        update={"similar_method": method, "similar_use_confidence": use_confidence}
    )
    named = {f"{m}{'+confidence' if c else ''}": score for (m, c), score in scores.items()}
    return best, named


def write_params(params: TrainParams, path: str | Path) -> Path:
    """Write parameters as `recs train --params` reads them: JSON (.json) or TOML."""
    import tomli_w

    path = Path(path)
    data = params.model_dump(mode="json", exclude_none=True)  # TOML has no null
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def _clip(value: float, bounds: tuple[float, float]) -> Any:
    return min(max(value, bounds[0]), bounds[1])


def _describe(params: TrainParams) -> str:
    recency = params.recency_half_life
    return (
        f"factors={params.factors} reg={params.regularization:.3g} alpha={params.alpha:.3g} "
        f"iters={params.iterations} value={params.use_event_value} "
        f"recency={'off' if recency is None else f'{recency:.3g}'}"
    )


def _cutoff(metric: str) -> list[int]:
    _, _, k = metric.rpartition("_at_")
    return [int(k)] if k.isdigit() else []


def _check_metric(metric: str) -> None:
    known = recommendation_metrics({"u": ["i"]}, {"u": {"i"}}, ks=_cutoff(metric) or [10])
    if metric not in known:
        raise ValueError(f"unknown metric {metric!r}; e.g. {', '.join(sorted(known))}")


def _frequent_event_types(interactions: pa.Table) -> list[str]:
    if "EVENT_TYPE" not in interactions.column_names:
        return []
    counts = pc.value_counts(interactions.column("EVENT_TYPE")).to_pylist()
    counts.sort(key=lambda c: (-c["counts"], c["values"] or ""))
    return [c["values"] for c in counts[:MAX_TUNED_EVENT_TYPES] if c["values"]]


def _has_varying_values(interactions: pa.Table) -> bool:
    if "EVENT_VALUE" not in interactions.column_names:
        return False
    values = pc.drop_null(interactions.column("EVENT_VALUE"))
    if len(values) == 0:
        return False
    bounds = pc.min_max(values).as_py()
    return bounds["min"] != bounds["max"]
