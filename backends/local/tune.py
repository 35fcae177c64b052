"""Tuning the local engine on a validation split carved from the training users only.

The tuner never sees a test holdout: it receives training data (a split's `train/`),
draws validation users from it with the same protocol as the evaluation (their newest
10% held out, at least one), trains on the rest and scores recommendations there.

Steps:
1. **Search** (most of the time budget): optuna's TPE sampler (seeded) proposes
   factors, regularization, alpha, iterations, a weight per event type, whether
   EVENT_VALUE scales confidence, and the recency half-life; each proposal is trained
   with `fit_model` and scored on validation split A. The engine's defaults are the
   first trial, so the result is never worse than them on validation.
2. **Confirm**: the best few are re-scored on validation split B (other users, other
   seed) and the best mean of A and B wins, so one lucky draw of validation users does
   not decide the outcome.
3. **Similar items**: with the winner's ALS settings, each item-item neighbourhood
   (cosine or BM25 co-occurrence, binary or confidence-weighted, or ALS factors) is
   scored as SIMS is used: the similar items of each validation user's newest input item,
   against that user's held-out items.

The objective is Personalize's `normalized_discounted_cumulative_gain_at_10` (any metric
of `pipeline.evaluation.metrics.recommendation_metrics` can be chosen).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from backends.local.backend import LocalBackend
from backends.local.params import TrainParams
from backends.local.similar import similar_neighbours
from backends.local.train import encode_ids, event_confidence, fit_model
from pipeline.evaluation.metrics import ndcg_at_k, recommendation_metrics
from pipeline.evaluation.run import BackendRecommender, evaluate, evaluation_data
from pipeline.evaluation.split import split_interactions

logger = logging.getLogger(__name__)

DEFAULT_METRIC = "normalized_discounted_cumulative_gain_at_10"
VALIDATION_FRACTION = 0.25  # of the eligible users; the holdout is 10% of theirs
MAX_VALIDATION_USERS = 5000
CONFIRM_TOP = 3
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

# Scoring recommendations does not need neighbours: the cheapest setting keeps fits fast.
CHEAP_NEIGHBOURS = {"similar_method": "cosine", "similar_neighbours": 1}

# Progress callback: (stage, trials done, best score so far).
TuneProgress = Callable[[str, int, float], None]


@dataclass
class Trial:
    """One scored parameter set."""

    number: int
    params: TrainParams
    score: float
    confirm_score: float | None = None
    seconds: float = 0.0

    @property
    def mean_score(self) -> float:
        """Mean over the validation splits it was scored on."""
        if self.confirm_score is None:
            return self.score
        return (self.score + self.confirm_score) / 2


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


class Validation:
    """A validation split of the training data and the scoring of parameters on it."""

    def __init__(
        self,
        interactions: pa.Table,
        seed: int,
        exclude_users: Iterable[str] = (),
        fraction: float = VALIDATION_FRACTION,
        metric: str = DEFAULT_METRIC,
    ) -> None:
        users = pc.unique(interactions.column("USER_ID")).to_pylist()
        excluded = set(exclude_users)
        eligible = [u for u in users if u not in excluded]
        if not eligible:
            raise ValueError("tuning data: no training users to draw validation users from")
        count = max(1, min(MAX_VALIDATION_USERS, round(fraction * len(eligible))))
        split = split_interactions(
            interactions,
            seed=seed,
            test_user_fraction=count / len(eligible),
            eligible_users=eligible,
        )
        self.train = split.train
        self.data = evaluation_data(split.train, split.holdout, negatives=0)
        self.metric = metric
        self.ks = sorted({10, *_cutoff(metric)})
        self.newest_input = _newest_item_per_user(split.train, set(self.data.relevant))

    @property
    def num_users(self) -> int:
        return len(self.data.relevant)

    def score(self, params: TrainParams) -> float:
        """Train on the validation split's training side and score the objective."""
        backend = LocalBackend.from_model(fit_model(self.train, params))
        result = evaluate(BackendRecommender(backend, "candidate"), self.data, self.ks, False)
        return result.metrics[self.metric]

    def similar_scores(
        self, params: TrainParams, choices: Iterable[tuple[str, bool]], k: int = 10
    ) -> dict[tuple[str, bool], float]:
        """Per (similar_method, similar_use_confidence): NDCG@k of the similar items of
        each validation user's newest input item against their held-out items.

        ALS is fitted once; only the neighbours are recomputed per choice.
        """
        model = fit_model(self.train, params.model_copy(update=CHEAP_NEIGHBOURS))
        weighted = confidence_matrix(self.train, params)
        binary = weighted.copy()
        binary.data = np.ones_like(binary.data)
        scores = {}
        for method, use_confidence in choices:
            indices, values = similar_neighbours(
                weighted if use_confidence else binary,
                model.item_factors,
                method,
                params.similar_neighbours,
            )
            backend = LocalBackend.from_model(
                dataclasses.replace(model, similar_indices=indices, similar_scores=values)
            )
            scores[(method, use_confidence)] = self._next_item_ndcg(backend, k)
        return scores

    def _next_item_ndcg(self, backend: LocalBackend, k: int) -> float:
        scores = []
        for user, relevant in self.data.relevant.items():
            item = self.newest_input.get(user)
            if item is not None:
                similar = [i.item_id for i in backend.similar_items(item, k).items]
                scores.append(ndcg_at_k(similar, relevant, k))
        return float(np.mean(scores)) if scores else 0.0


def confidence_matrix(interactions: pa.Table, params: TrainParams) -> sp.csr_matrix:
    """The users x items confidence matrix as `fit_model` builds it (zero pairs dropped)."""
    user_codes, user_ids = encode_ids(interactions, "USER_ID")
    item_codes, item_ids = encode_ids(interactions, "ITEM_ID")
    matrix = sp.csr_matrix(
        (event_confidence(interactions, params), (user_codes, item_codes)),
        shape=(len(user_ids), len(item_ids)),
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


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
    """Search the local engine's parameters on validation splits of `interactions`.

    Stops after `trials` search trials or when `SEARCH_SHARE` of `time_budget` seconds is
    spent, whichever comes first (at least the defaults and one proposal are tried).
    `exclude_users` (a split's test users) are never drawn as validation users.
    """
    import optuna

    if trials is None and time_budget is None:
        raise ValueError("give trials, a time budget or both")
    _check_metric(metric)
    started = time.perf_counter()
    base = base or TrainParams()
    exclude_users = list(exclude_users)
    split_a = Validation(interactions, seed, exclude_users, metric=metric)
    split_b = Validation(interactions, seed + 1, exclude_users, metric=metric)
    space = SearchSpace(interactions, base)
    report = on_progress or (lambda _stage, _done, _best: None)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(space.as_trial_values(base))
    history: list[Trial] = []
    deadline = None if time_budget is None else started + SEARCH_SHARE * time_budget

    def objective(trial: Any) -> float:
        # Trial 0 is the base itself; its enqueued values only inform the sampler.
        params = base if trial.number == 0 else space.suggest(trial)
        trial_started = time.perf_counter()
        score = split_a.score(params.model_copy(update=CHEAP_NEIGHBOURS))
        history.append(
            Trial(trial.number, params, score, seconds=time.perf_counter() - trial_started)
        )
        logger.debug("trial %d: %s = %.4f (%s)", trial.number, metric, score, _describe(params))
        report("search", len(history), max(t.score for t in history))
        return score

    while trials is None or len(history) < trials:
        if deadline is not None and len(history) >= 2 and time.perf_counter() >= deadline:
            break
        study.optimize(objective, n_trials=1)

    default = history[0]
    ranked = sorted(history, key=lambda t: t.score, reverse=True)
    finalists = ranked[:CONFIRM_TOP]
    if default not in finalists:
        finalists.append(default)
    for done, trial in enumerate(finalists, start=1):
        if time_budget is not None and done > 1 and time.perf_counter() > started + time_budget:
            logger.info("time budget spent: confirmed %d of %d finalists", done - 1, len(finalists))
            break
        trial.confirm_score = split_b.score(trial.params.model_copy(update=CHEAP_NEIGHBOURS))
        report("confirm", done, max(t.mean_score for t in finalists))
    confirmed = [t for t in finalists if t.confirm_score is not None]
    chosen = max(confirmed, key=lambda t: t.mean_score)

    best, similar_scores = _choose_similar(chosen.params, split_a, report)
    return TuneResult(
        best=best,
        chosen=chosen,
        default=default,
        trials=history,
        metric=metric,
        similar_scores=similar_scores,
        validation={
            "users_a": split_a.num_users,
            "users_b": split_b.num_users,
            "excluded_test_users": len(exclude_users),
        },
        event_types=space.event_types,
        seconds=time.perf_counter() - started,
    )


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


def _newest_item_per_user(table: pa.Table, users: set[str]) -> dict[str, str]:
    """Each user's newest item in `table` (ties: the later row)."""
    newest: dict[str, tuple[int, str]] = {}
    rows = zip(
        table.column("USER_ID").to_pylist(),
        table.column("ITEM_ID").to_pylist(),
        table.column("TIMESTAMP").to_pylist(),
        strict=True,
    )
    for user, item, timestamp in rows:
        if user in users and (user not in newest or timestamp >= newest[user][0]):
            newest[user] = (timestamp, item)
    return {user: item for user, (_, item) in newest.items()}
