"""MovieLens ratings (`ratings.csv`, optionally `movies.csv`) as a prepared dataset.

Every rating is one interaction, at the file's timestamp:

- USER_ID and ITEM_ID are MovieLens' own userId and movieId;
- EVENT_TYPE from the rating, so event-type weights mean something to the tuner:
  `loved` (4.5 to 5 stars), `liked` (3.5 to 4), `neutral` (2.5 to 3), `disliked` (0.5 to 2);
- EVENT_VALUE = rating / 5 (0.1 to 1.0), used when `use_event_value` is on.

`movies.csv` (movieId,title,genres), when given, becomes `items.csv`: TITLE the title,
CATEGORIES the genres (already pipe-separated; "(no genres listed)" becomes empty),
CREATION_TIMESTAMP the movie's first rating (MovieLens has no release timestamp).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recs.pipeline.dataset import ITEM_COLUMNS, ITEM_TYPES, DatasetError
from recs.pipeline.output import write_interactions, write_items

# (lowest rating of the band, EVENT_TYPE), highest band first.
RATING_BANDS = ((4.5, "loved"), (3.5, "liked"), (2.5, "neutral"), (0.0, "disliked"))
NO_GENRES = "(no genres listed)"
RATINGS_TYPES = {
    "userId": pa.string(),
    "movieId": pa.string(),
    "rating": pa.float64(),
    "timestamp": pa.int64(),
}


def read_ratings(path: str | Path) -> pa.Table:
    """`ratings.csv` as an interactions table (see the module docstring for the mapping)."""
    raw = _read_csv(path, RATINGS_TYPES)
    ratings = raw.column("rating").to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~((ratings >= 0.5) & (ratings <= 5.0)))
    if len(bad):
        raise DatasetError(
            f"{path}: line {bad[0] + 2}: column rating: {ratings[bad[0]]} is not in 0.5..5"
        )
    event_types = np.full(len(ratings), RATING_BANDS[-1][1], dtype=object)
    for lowest, name in reversed(RATING_BANDS[:-1]):
        event_types[ratings >= lowest] = name
    return pa.table(
        {
            "USER_ID": raw.column("userId"),
            "ITEM_ID": raw.column("movieId"),
            "TIMESTAMP": raw.column("timestamp"),
            "EVENT_TYPE": pa.array(event_types.tolist(), pa.string()),
            "EVENT_VALUE": pa.array(np.round(ratings / 5.0, 4), pa.float64()),
        }
    )


def read_movies(path: str | Path, interactions: pa.Table) -> pa.Table:
    """`movies.csv` as an items table; CREATION_TIMESTAMP is the first rating's time."""
    raw = _read_csv(path, {"movieId": pa.string(), "title": pa.string(), "genres": pa.string()})
    first_rated = interactions.group_by("ITEM_ID").aggregate([("TIMESTAMP", "min")])
    first = dict(
        zip(
            first_rated.column("ITEM_ID").to_pylist(),
            first_rated.column("TIMESTAMP_min").to_pylist(),
            strict=True,
        )
    )
    fallback = pc.min(interactions.column("TIMESTAMP")).as_py() or 0
    ids = raw.column("movieId").to_pylist()
    genres = [None if g == NO_GENRES else g for g in raw.column("genres").to_pylist()]
    columns = {
        "ITEM_ID": raw.column("movieId"),
        "TITLE": raw.column("title"),
        "URL": pa.nulls(raw.num_rows, pa.string()),
        "CATEGORIES": pa.array(genres, pa.string()),
        "DURATION": pa.nulls(raw.num_rows, pa.float64()),
        "CREATION_TIMESTAMP": pa.array([first.get(i, fallback) for i in ids], pa.int64()),
    }
    return pa.table([columns[c].cast(ITEM_TYPES[c]) for c in ITEM_COLUMNS], names=ITEM_COLUMNS)


def convert(ratings: str | Path, out_dir: str | Path, movies: str | Path | None = None) -> dict:
    """Write the prepared dataset; returns counts for the summary line."""
    interactions = read_ratings(ratings)
    out_dir = write_interactions(interactions, out_dir)
    summary = {
        "interactions": interactions.num_rows,
        "users": len(pc.unique(interactions.column("USER_ID"))),
        "items": len(pc.unique(interactions.column("ITEM_ID"))),
    }
    if movies is not None:
        items = read_movies(movies, interactions)
        write_items(items, out_dir)
        summary["catalog_items"] = items.num_rows
    return summary


def _read_csv(path: str | Path, types: dict[str, pa.DataType]) -> pa.Table:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=types, include_columns=list(types), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise DatasetError(f"{path}: malformed ({exc})") from exc
    return table
