"""What events received since training change: each subject's vector and interaction window.

A subject is a user, or an anonymous visitor known by their session id. For each subject with
events after training, `LiveState` keeps:

- **the vector**, solved again from the subject's whole history with the new events, by the
  closed form implicit's ALS uses for one user (`implicit.cpu.als.user_linear_equation`, which
  `recalculate_user` runs): with the item factors Y fixed, confidences c = alpha x (summed event
  weights) and regularization lambda,
      x = (YtY + lambda I + sum_i (c_i - 1) y_i y_iT)^-1  sum_i c_i y_i.
  The history is the training matrix the model stores (`confidence_*`), each new event adding
  its type's weight (times EVENT_VALUE when the model was trained so), as `recs train` weighs
  events; with `recency_half_life`, every new event halves older weights once per half-life, as
  training's recency factors do. A user the model never saw (or a session) is folded in from
  their events alone, so one event already moves them off the popular fallback.
- **the window** filters see: the training window (`backends.local.recent`) plus every new
  event, at most 100 per event type (the new events first, as the most recent), and the
  history the default filter excludes (its items the model knows).

Items the model does not know have no factors: they count for filters (if the catalog has
them) but not in the vector. `apply` runs on the thread that reads the event store; readers on
the event loop get a subject's state with one dict lookup, replaced whole (never half-updated).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from recs.backends.base import Event
from recs.backends.local.artifacts import LocalModel
from recs.backends.local.event_store import StoredEvent
from recs.backends.local.filter_masks import Window
from recs.backends.local.params import TrainParams
from recs.backends.local.recent import INTERACTIONS_PER_EVENT_TYPE

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveSubject:
    """One subject's state after the events applied so far."""

    vector: np.ndarray  # float32 (factors,)
    window: Window
    history: np.ndarray  # int32 model item indices the default filter excludes
    confidences: Mapping[int, float]  # model item -> summed event weight (before alpha)
    events: int  # events applied since training


class LiveState:
    """Subjects changed by real-time events, by id (user id or session id)."""

    def __init__(self, model: LocalModel, user_index: Mapping[str, int]) -> None:
        self._model = model
        self._user_index = user_index
        self.params = _training_params(model)
        factors = np.asarray(model.item_factors, dtype=np.float64)
        self._factors = factors
        self._gram = factors.T @ factors + self.params.regularization * np.eye(factors.shape[1])
        self._type_names = [str(name).lower() for name in model.event_types.tolist()]
        self._type_codes = {name: code for code, name in enumerate(self._type_names)}
        self.subjects: dict[str, LiveSubject] = {}
        self.applied_seq = 0

    def get(self, subject: str) -> LiveSubject | None:
        return self.subjects.get(subject)

    def apply(self, stored: Sequence[StoredEvent], item_index: Mapping[str, int]) -> None:
        """Fold `stored` (in seq order) into their subjects; `item_index` maps item ids to
        universe indices (model items first, then catalog-only items)."""
        by_subject: dict[str, list[StoredEvent]] = {}
        for row in stored:
            by_subject.setdefault(row.subject, []).append(row)
        for subject, rows in by_subject.items():
            self.subjects[subject] = self._updated(subject, rows, item_index)
        if stored:
            self.applied_seq = max(self.applied_seq, stored[-1].seq)

    def _updated(
        self, subject: str, rows: list[StoredEvent], item_index: Mapping[str, int]
    ) -> LiveSubject:
        current = self.subjects.get(subject) or self._from_model(subject)
        params = self.params
        confidences = dict(current.confidences)
        new_items: list[int] = []
        new_types: list[int] = []
        num_items = self._model.num_items
        for row in sorted(rows, key=lambda r: (r.event.sent_at, r.seq)):
            event = row.event
            if params.recency_half_life is not None:
                decay = 0.5 ** (1.0 / params.recency_half_life)
                confidences = {item: weight * decay for item, weight in confidences.items()}
            item = item_index.get(event.item_id)
            if item is None:
                continue  # known to neither the model nor the catalog: nothing to score or filter
            if item < num_items:
                confidences[item] = confidences.get(item, 0.0) + _weight(params, event)
            new_items.append(item)
            new_types.append(self._type_code(event.event_type))
        window = self._merged_window(current.window, new_items, new_types)
        history = np.unique(window.items[window.items < num_items]).astype(np.int32)
        return LiveSubject(
            vector=self._solve(confidences),
            window=window,
            history=history,
            confidences=confidences,
            events=current.events + len(rows),
        )

    def _from_model(self, subject: str) -> LiveSubject:
        """The subject as trained (a user the model knows), or empty (new user, session)."""
        model = self._model
        names = np.array(self._type_names)
        user = self._user_index.get(subject)
        if user is None:
            empty = np.empty(0, dtype=np.int64)
            return LiveSubject(
                np.zeros(model.item_factors.shape[1], dtype=np.float32),
                Window(empty, empty, names),
                np.empty(0, dtype=np.int32),
                {},
                0,
            )
        start, stop = model.recent_indptr[user], model.recent_indptr[user + 1]
        window = Window(
            np.asarray(model.recent_items[start:stop], dtype=np.int64),
            np.asarray(model.recent_types[start:stop], dtype=np.int64),
            names,
        )
        if model.confidence_indptr is not None:
            c_start, c_stop = model.confidence_indptr[user], model.confidence_indptr[user + 1]
            items = model.confidence_indices[c_start:c_stop].tolist()
            weights = model.confidence_data[c_start:c_stop].tolist()
        else:  # a model without its training matrix: each known item once, weight 1
            h_start, h_stop = model.history_indptr[user], model.history_indptr[user + 1]
            items = model.history_indices[h_start:h_stop].tolist()
            weights = [1.0] * len(items)
        history_start, history_stop = model.history_indptr[user], model.history_indptr[user + 1]
        return LiveSubject(
            np.asarray(model.user_factors[user], dtype=np.float32),
            window,
            np.asarray(model.history_indices[history_start:history_stop], dtype=np.int32),
            dict(zip(items, weights, strict=True)),
            0,
        )

    def _type_code(self, event_type: str) -> int:
        name = event_type.lower()
        code = self._type_codes.get(name)
        if code is None:
            code = len(self._type_names)
            self._type_names.append(name)
            self._type_codes[name] = code
        return code

    def _merged_window(self, window: Window, items: list[int], types: list[int]) -> Window:
        """The window with the new (item, type) pairs, newest first, at most 100 events a type."""
        names = np.array(self._type_names)
        if not items:
            return Window(window.items, window.types, names)
        pairs: dict[tuple[int, int], None] = {}
        counts: dict[int, int] = {}
        for item, code in zip(reversed(items), reversed(types), strict=True):
            if counts.get(code, 0) < INTERACTIONS_PER_EVENT_TYPE:
                counts[code] = counts.get(code, 0) + 1
                pairs[(item, code)] = None
        for item, code in zip(window.items.tolist(), window.types.tolist(), strict=True):
            if (item, code) not in pairs and counts.get(code, 0) < INTERACTIONS_PER_EVENT_TYPE:
                counts[code] = counts.get(code, 0) + 1
                pairs[(item, code)] = None
        merged = np.array(list(pairs), dtype=np.int64).reshape(-1, 2)
        return Window(merged[:, 0], merged[:, 1], names)

    def _solve(self, confidences: Mapping[int, float]) -> np.ndarray:
        """The ALS user vector for these confidences (implicit's closed form, see module)."""
        positive = {item: c for item, c in confidences.items() if c > 0}
        if not positive:
            return np.zeros(self._factors.shape[1], dtype=np.float32)
        items = np.fromiter(positive, dtype=np.int64, count=len(positive))
        c = self.params.alpha * np.fromiter(positive.values(), dtype=np.float64, count=len(items))
        rows = self._factors[items]
        matrix = self._gram + (rows.T * (c - 1.0)) @ rows
        return np.linalg.solve(matrix, rows.T @ c).astype(np.float32)


def _weight(params: TrainParams, event: Event) -> float:
    """One event's confidence, as training weighs it (`train.event_confidence`)."""
    weight = params.weight_of(event.event_type)
    value = event.event_value
    if params.use_event_value and value is not None:
        weight *= max(value, 0.0)
    return weight


def _training_params(model: LocalModel) -> TrainParams:
    """The parameters the model was trained with (defaults, with a warning, if unreadable)."""
    try:
        return TrainParams.model_validate(model.meta.get("params") or {})
    except ValidationError:
        logger.warning("model meta.json params unreadable: real-time events use default params")
        return TrainParams()
