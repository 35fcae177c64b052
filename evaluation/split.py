"""Amazon Personalize's offline-evaluation split, reproducible from a seed.

Personalize's protocol (reference section 4): 10% of users are test users; after
training, the model is given the oldest 90% of each test user's interactions as input
and its recommendations are compared with the newest 10%.

Here the model's input reaches it the simplest faithful way: **the training data holds
every interaction except the test users' newest 10%** (all of the training users'
interactions plus each test user's oldest 90%). A model trained on it knows each test
user by that input, exactly like a Personalize solution trained on the same upload,
and a model or service that is only queried (a gRPC target, a Personalize campaign)
needs nothing else. Only the newest 10% (the *holdout*) is kept out.

Details the docs leave open, decided here:
- test users are drawn from the distinct user ids sorted ascending, so the choice
  depends only on the seed and the set of users, not on row order;
- a test user's interactions are ordered by TIMESTAMP, ties by their order in the file;
- the number held out is ceil(10% of the user's interactions), at least one (the AWS
  sample's `rank(pct=True) > 0.9` gives the same count without ties), so a test user
  with a single interaction has no input and is answered as a cold user.

A split directory (`write_split`) holds `train/` (a prepared dataset: trainable with
`recs train --data SPLIT/train` or uploadable), `holdout/interactions.csv`,
`test_users.csv` (who the test users are, so tuning can leave them out without reading
the holdout) and `split.json` (seed, fractions, counts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recs.pipeline.dataset import DatasetError, encode_ids, read_interactions
from recs.pipeline.output import copy_items, write_csv, write_interactions

TEST_USER_FRACTION = 0.1
HOLDOUT_FRACTION = 0.1

TRAIN_DIR = "train"
HOLDOUT_DIR = "holdout"
MANIFEST_FILE = "split.json"
TEST_USERS_FILE = "test_users.csv"


@dataclass(frozen=True)
class Split:
    """A split of one interactions table.

    `train` is the model's training data *and* the test users' input (their oldest
    interactions); `holdout` holds the test users' newest interactions, never trained on.
    """

    train: pa.Table
    holdout: pa.Table

    @property
    def test_users(self) -> list[str]:
        """The test users, sorted (each has at least one held-out interaction)."""
        return sorted(pc.unique(self.holdout.column("USER_ID")).to_pylist())


def split_interactions(
    interactions: pa.Table,
    seed: int = 0,
    test_user_fraction: float = TEST_USER_FRACTION,
    holdout_fraction: float = HOLDOUT_FRACTION,
    eligible_users: Iterable[str] | None = None,
) -> Split:
    """Split `interactions` by Personalize's protocol (see the module docstring).

    `eligible_users`, when given, restricts which users may be drawn as test users (the
    tuner draws validation users from training users only); the fraction applies to them.
    Raises DatasetError when there is no user to draw.
    """
    _check_fraction("test_user_fraction", test_user_fraction)
    _check_fraction("holdout_fraction", holdout_fraction)
    user_codes, users = encode_ids(interactions, "USER_ID")
    candidates = np.arange(len(users))
    if eligible_users is not None:
        candidates = np.flatnonzero(np.isin(users, np.asarray(list(eligible_users), dtype=str)))
    if len(candidates) == 0:
        raise DatasetError("interactions: no users to draw test users from")
    num_test = max(1, round(test_user_fraction * len(candidates)))
    rng = np.random.default_rng(seed)
    test_codes = rng.choice(candidates, size=num_test, replace=False)

    held_out = _newest_rows(
        user_codes,
        interactions.column("TIMESTAMP").to_numpy(zero_copy_only=False),
        np.isin(user_codes, test_codes),
        holdout_fraction,
    )
    mask = pa.array(held_out)
    return Split(train=interactions.filter(pc.invert(mask)), holdout=interactions.filter(mask))


def holdout_count(
    num_interactions: int | np.ndarray, holdout_fraction: float = HOLDOUT_FRACTION
) -> int | np.ndarray:
    """How many of a test user's interactions are held out: ceil(fraction * n), at least 1.

    Takes one count or an array of counts (one per user).
    """
    # The epsilon keeps an exact product such as 10 * 0.1 from rounding up to 2.
    held = np.maximum(1, np.ceil(np.asarray(num_interactions) * holdout_fraction - 1e-9))
    return held.astype(np.int64) if held.ndim else int(held)


def _newest_rows(
    user_codes: np.ndarray, timestamps: np.ndarray, is_test: np.ndarray, fraction: float
) -> np.ndarray:
    """Boolean mask of the rows held out: each test user's newest `fraction` of rows."""
    rows = np.flatnonzero(is_test)
    # Group rows by user, oldest first, ties by file order.
    order = rows[np.lexsort((rows, timestamps[rows], user_codes[rows]))]
    _, starts, counts = np.unique(user_codes[order], return_index=True, return_counts=True)
    group_sizes = np.repeat(counts, counts)
    position = np.arange(len(order)) - np.repeat(starts, counts)
    hold = holdout_count(group_sizes, fraction)
    mask = np.zeros(len(user_codes), dtype=bool)
    mask[order[position >= group_sizes - hold]] = True
    return mask


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name}: must be in (0, 1], got {value}")


# --- split directories -------------------------------------------------------------------


def write_split(
    split: Split, out_dir: str | Path, source_dir: str | Path | None, manifest: dict[str, Any]
) -> Path:
    """Write `train/` (with the source's items.csv, if any), `holdout/` and `split.json`."""
    out_dir = Path(out_dir)
    write_interactions(split.train, out_dir / TRAIN_DIR)
    if source_dir is not None:
        copy_items(source_dir, out_dir / TRAIN_DIR)
    write_interactions(split.holdout, out_dir / HOLDOUT_DIR)
    users = pa.table({"USER_ID": pa.array(split.test_users, pa.string())})
    write_csv(users, out_dir / TEST_USERS_FILE)
    full_manifest = {
        **manifest,
        "train_dir": TRAIN_DIR,
        "holdout_dir": HOLDOUT_DIR,
        "counts": split_counts(split),
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(full_manifest, indent=2) + "\n")
    return out_dir


def split_counts(split: Split) -> dict[str, int]:
    """Row and user counts of a split, for the manifest and the summary line."""
    train_users = set(pc.unique(split.train.column("USER_ID")).to_pylist())
    test_users = split.test_users
    return {
        "users": len(train_users | set(test_users)),
        "test_users": len(test_users),
        "train_interactions": split.train.num_rows,
        "holdout_interactions": split.holdout.num_rows,
    }


def read_train(split_dir: str | Path) -> pa.Table:
    """The training data of a split (what models train on; the test users' input)."""
    return read_interactions(_require_split(split_dir) / TRAIN_DIR)


def read_holdout(split_dir: str | Path) -> pa.Table:
    """The test users' held-out newest interactions. Only evaluation may read these."""
    return read_interactions(_require_split(split_dir) / HOLDOUT_DIR)


def read_test_users(split_dir: str | Path) -> list[str]:
    """The test users of a split (from `test_users.csv`, not from the holdout)."""
    path = _require_split(split_dir) / TEST_USERS_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    options = pacsv.ConvertOptions(column_types={"USER_ID": pa.string()})
    return pacsv.read_csv(path, convert_options=options).column("USER_ID").to_pylist()


def read_training_side(path: str | Path) -> tuple[pa.Table, list[str]]:
    """Training data for tuning, and the users that must not be drawn for validation.

    `path` is a prepared dataset, a split directory (its `train/` is read) or the `train/`
    of a split. In the last two cases the split's test users are returned so validation
    users are carved from the training users only; the holdout is never read.
    """
    path = Path(path)
    if is_split_dir(path):
        return read_train(path), read_test_users(path)
    if path.name == TRAIN_DIR and is_split_dir(path.parent):
        return read_interactions(path), read_test_users(path.parent)
    return read_interactions(path), []


def read_manifest(split_dir: str | Path) -> dict[str, Any]:
    """The `split.json` of a split directory."""
    path = _require_split(split_dir) / MANIFEST_FILE
    return json.loads(path.read_text(encoding="utf-8"))


def is_split_dir(path: str | Path) -> bool:
    """True for a directory written by `write_split`."""
    return (Path(path) / MANIFEST_FILE).is_file()


def _require_split(split_dir: str | Path) -> Path:
    split_dir = Path(split_dir)
    if not is_split_dir(split_dir):
        raise DatasetError(
            f"{split_dir}: not a split directory (no {MANIFEST_FILE}; "
            "make one with `recs evaluate split`)"
        )
    return split_dir
