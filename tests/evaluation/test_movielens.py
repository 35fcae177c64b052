"""MovieLens ratings -> prepared dataset: one event per rating, type by rating band."""

from __future__ import annotations

import pytest

from recs.evaluation.movielens import convert
from recs.pipeline.dataset import DatasetError, read_interactions, read_items


def write(path, text: str):
    path.write_text(text)
    return path


def test_every_rating_is_one_event_with_its_band_and_value(tmp_path) -> None:
    ratings = write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,10,5.0,100\n1,20,3.5,90\n2,10,2.5,80\n2,30,0.5,70\n",
    )
    movies = write(
        tmp_path / "movies.csv",
        'movieId,title,genres\n10,"Heat, The (1995)",Action|Crime\n20,B,(no genres listed)\n'
        "99,Never rated,Drama\n",
    )
    summary = convert(ratings, tmp_path / "out", movies)
    assert summary == {"interactions": 4, "users": 2, "items": 3, "catalog_items": 3}
    table = read_interactions(tmp_path / "out")
    assert table.column("EVENT_TYPE").to_pylist() == ["loved", "liked", "neutral", "disliked"]
    assert table.column("EVENT_VALUE").to_pylist() == [1.0, 0.7, 0.5, 0.1]
    assert table.column("TIMESTAMP").to_pylist() == [100, 90, 80, 70]
    items = read_items(tmp_path / "out")
    assert items.column("TITLE").to_pylist()[0] == "Heat, The (1995)"
    assert items.column("CATEGORIES").to_pylist()[:2] == ["Action|Crime", ""]
    assert items.column("CREATION_TIMESTAMP").to_pylist() == [80, 90, 70]


def test_rating_out_of_range_names_the_line(tmp_path) -> None:
    ratings = write(
        tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.0,1\n1,11,7.0,2\n"
    )
    with pytest.raises(DatasetError, match="line 3: column rating"):
        convert(ratings, tmp_path / "out")


def test_missing_column_is_reported(tmp_path) -> None:
    ratings = write(tmp_path / "ratings.csv", "userId,movieId,timestamp\n1,10,1\n")
    with pytest.raises(DatasetError, match=r"ratings\.csv"):
        convert(ratings, tmp_path / "out")
