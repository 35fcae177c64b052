"""The local engine's recency weighting (`recency_half_life`), which the tuner searches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recs.backends.local.params import TrainParams
from recs.backends.local.train import event_confidence, recency_factors


def test_each_newer_event_of_the_same_user_halves_at_half_life_one() -> None:
    table = pa.table({"USER_ID": ["a", "b", "a", "a", "b", "a"], "TIMESTAMP": [1, 5, 3, 3, 4, 9]})
    # a: 9 is newest; the two events at 3 tie (one newer event); 1 has three newer.
    np.testing.assert_allclose(recency_factors(table, 1.0), [0.125, 1, 0.5, 0.5, 0.5, 1])
    np.testing.assert_allclose(recency_factors(table, 2.0)[0], 0.5**1.5)


def test_recency_multiplies_event_confidence_only_when_set() -> None:
    table = pa.table(
        {
            "USER_ID": ["a", "a"],
            "ITEM_ID": ["x", "y"],
            "TIMESTAMP": [1, 2],
            "EVENT_TYPE": ["watched", "watched"],
        }
    )
    plain = TrainParams(event_weights={"watched": 2.0})
    assert event_confidence(table, plain).tolist() == [2.0, 2.0]
    recent = TrainParams(event_weights={"watched": 2.0}, recency_half_life=1.0)
    assert event_confidence(table, recent).tolist() == [1.0, 2.0]


def test_half_life_must_be_positive() -> None:
    with pytest.raises(ValueError, match="recency_half_life"):
        TrainParams(recency_half_life=0)
