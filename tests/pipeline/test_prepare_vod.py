"""`recs prepare --domain video-on-demand`: Personalize's VIDEO_ON_DEMAND domain files.

The same log gives the same interactions with the domain's event types (`Watch`/`Click`),
items with GENRES from the categories, the domain's Avro schemas and a `dataset.json`
naming the domain; without `--domain` the output is the custom one, byte for byte; and the
local engine trains the same model on either.
"""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import numpy as np
import pytest
from fastavro.validation import validate

from recs.backends.local.params import TrainParams
from recs.backends.local.scoring import recommend_scores
from recs.backends.local.train import fit_model
from recs.cli.data import DOMAINS
from recs.cli.main import main
from recs.pipeline.dataset import (
    DATASET_META_FILE,
    DOMAIN_VIDEO_ON_DEMAND,
    INTERACTION_COLUMNS,
    VOD_ITEM_COLUMNS,
    read_domain,
    read_interactions,
    read_items,
)
from recs.pipeline.items import MISSING_GENRES
from recs.pipeline.prepare import PrepareError, PrepareOptions, prepare
from recs.pipeline.schemas import (
    NAMESPACE,
    VOD_REQUIRED_FIELDS,
    vod_interactions_schema,
    vod_items_schema,
)
from recs.pipeline.synth import SynthConfig, synthesize

LOG = (
    "user_id,item_id,timestamp,watch_duration,video_duration\n"
    "u1,v1,1700000000,20,30\n"  # 0.67: watched
    "u1,v2,1700000001,3,30\n"  # 0.1: clicked
    "u2,v1,1700000002,15,30\n"  # exactly 0.5: clicked
    "u2,v3,1700000003,90,30\n"  # re-watch 3.0: watched
)
CATALOG = (
    "item_id,title,duration,categories,url,creation_time\n"
    "v1,A cat,30, pets | comedy ,https://b.s3.amazonaws.com/v1.mp4,1699000000\n"
    "v2,A dog,,sports,,1699000001\n"
    "v3,No genre,30,,,1699000002\n"
)

# The custom output of LOG as it was before domains existed (checked against the previous
# code): the default must not change by a byte.
CUSTOM_INTERACTIONS = (
    "USER_ID,ITEM_ID,TIMESTAMP,EVENT_TYPE,EVENT_VALUE\n"
    '"u1","v1",1700000000,"watched",0.6666666666666666\n'
    '"u1","v2",1700000001,"clicked",0.1\n'
    '"u2","v1",1700000002,"clicked",0.5\n'
    '"u2","v3",1700000003,"watched",3\n'
)


@pytest.fixture
def raw(tmp_path: Path) -> tuple[Path, Path]:
    log, catalog = tmp_path / "log.csv", tmp_path / "catalog.csv"
    log.write_text(LOG, encoding="utf-8")
    catalog.write_text(CATALOG, encoding="utf-8")
    return log, catalog


def run(raw: tuple[Path, Path], out: Path, domain: str | None, **kwargs):
    log, catalog = raw
    return prepare(
        PrepareOptions(watch_log=log, out_dir=out, items=catalog, domain=domain, **kwargs)
    )


def test_vod_interactions_carry_the_domain_event_types(raw, tmp_path: Path) -> None:
    result = run(raw, tmp_path / "vod", DOMAIN_VIDEO_ON_DEMAND)
    table = read_interactions(tmp_path / "vod")
    assert table.column_names == INTERACTION_COLUMNS
    assert table.column("EVENT_TYPE").to_pylist() == ["Watch", "Click", "Click", "Watch"]
    assert table.column("EVENT_VALUE").to_pylist() == pytest.approx([2 / 3, 0.1, 0.5, 3.0])
    assert "2 Watch, 2 Click" in result.summary()


def test_vod_interactions_differ_from_custom_only_in_the_event_names(raw, tmp_path) -> None:
    run(raw, tmp_path / "custom", None)
    run(raw, tmp_path / "vod", DOMAIN_VIDEO_ON_DEMAND)
    custom = (tmp_path / "custom" / "interactions.csv").read_text()
    vod = (tmp_path / "vod" / "interactions.csv").read_text()
    assert vod == custom.replace('"watched"', '"Watch"').replace('"clicked"', '"Click"')


def test_vod_items_have_genres_from_the_categories(raw, tmp_path: Path) -> None:
    run(raw, tmp_path / "vod", DOMAIN_VIDEO_ON_DEMAND)
    items = read_items(tmp_path / "vod")
    assert items.column_names == VOD_ITEM_COLUMNS
    assert "CATEGORIES" not in items.column_names
    rows = {row["ITEM_ID"]: row for row in items.to_pylist()}
    assert rows["v1"]["GENRES"] == "pets|comedy"  # normalised, `|`-separated
    assert rows["v2"]["GENRES"] == "sports"
    assert (rows["v1"]["TITLE"], rows["v1"]["URL"]) == (
        "A cat",
        "https://b.s3.amazonaws.com/v1.mp4",
    )
    assert rows["v1"]["DURATION"] == 30.0
    assert rows["v2"]["CREATION_TIMESTAMP"] == 1699000001


def test_a_catalog_row_without_categories_is_rejected_only_for_vod(raw, tmp_path) -> None:
    vod = run(raw, tmp_path / "vod", DOMAIN_VIDEO_ON_DEMAND)
    assert "v3" not in read_items(tmp_path / "vod").column("ITEM_ID").to_pylist()
    assert (vod.catalog_rows, vod.catalog_items, vod.catalog_rejected) == (3, 2, 1)
    assert vod.catalog_rejects is not None
    assert vod.catalog_rejects.counts == {MISSING_GENRES: 1}
    custom = run(raw, tmp_path / "custom", None)
    assert (custom.catalog_items, custom.catalog_rejected) == (3, 0)


def test_a_catalog_without_any_categories_cannot_make_vod_items(tmp_path: Path) -> None:
    log, catalog = tmp_path / "log.csv", tmp_path / "catalog.csv"
    log.write_text(LOG)
    catalog.write_text("item_id,creation_time\nv1,1699000000\n")
    with pytest.raises(PrepareError, match="no valid catalog row"):
        run((log, catalog), tmp_path / "vod", DOMAIN_VIDEO_ON_DEMAND)


@pytest.mark.parametrize(
    ("file", "name", "schema"),
    [
        ("interactions.schema.json", "Interactions", vod_interactions_schema()),
        ("items.schema.json", "Items", vod_items_schema()),
    ],
)
def test_vod_schemas_are_valid_avro_with_the_required_fields(
    raw, tmp_path: Path, file: str, name: str, schema: dict
) -> None:
    run(raw, tmp_path / "vod", DOMAIN_VIDEO_ON_DEMAND)
    written = json.loads((tmp_path / "vod" / file).read_text())
    assert written == schema
    fastavro.parse_schema(written)  # raises on invalid Avro
    assert (written["type"], written["name"], written["namespace"], written["version"]) == (
        "record", name, NAMESPACE, "1.0",
    )  # fmt: skip
    names = [field["name"] for field in written["fields"]]
    assert set(VOD_REQUIRED_FIELDS[name]) <= set(names)
    header = (tmp_path / "vod" / file.replace(".schema.json", ".csv")).read_text().splitlines()[0]
    assert header.split(",") == names


def test_vod_fields_follow_the_domain_rules() -> None:
    interactions = {f["name"]: f for f in vod_interactions_schema()["fields"]}
    assert interactions["USER_ID"]["type"] == interactions["ITEM_ID"]["type"] == "string"
    assert interactions["TIMESTAMP"]["type"] == "long"
    assert interactions["EVENT_TYPE"] == {"name": "EVENT_TYPE", "type": "string"}
    assert interactions["EVENT_VALUE"]["type"] == ["float", "null"]
    items = {f["name"]: f for f in vod_items_schema()["fields"]}
    assert items["ITEM_ID"]["type"] == "string"
    assert items["GENRES"] == {"name": "GENRES", "type": "string", "categorical": True}
    assert items["CREATION_TIMESTAMP"]["type"] == "long"
    assert items["DURATION"]["type"] == ["float", "null"]
    assert "CATEGORIES" not in items
    assert sum(1 for f in items.values() if f.get("textual")) == 1


def test_every_vod_row_validates_against_its_schema(raw, tmp_path: Path) -> None:
    out = tmp_path / "vod"
    run(raw, out, DOMAIN_VIDEO_ON_DEMAND)
    for rows, schema in (
        (read_interactions(out).to_pylist(), vod_interactions_schema()),
        (read_items(out).to_pylist(), vod_items_schema()),
    ):
        parsed = fastavro.parse_schema(schema)
        for row in rows:
            record = {k: (None if v == "" else v) for k, v in row.items()}
            assert validate(record, parsed, raise_errors=True)


def test_the_domain_marker(raw, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = run(raw, out, DOMAIN_VIDEO_ON_DEMAND)
    assert json.loads((out / DATASET_META_FILE).read_text()) == {"domain": "VIDEO_ON_DEMAND"}
    assert out / DATASET_META_FILE in result.files
    assert read_domain(out) == DOMAIN_VIDEO_ON_DEMAND
    run(raw, out, None)  # the same directory prepared for a custom group again
    assert not (out / DATASET_META_FILE).exists()
    assert read_domain(out) is None


def test_an_unknown_domain_is_refused(raw, tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match="unknown domain 'ECOMMERCE'"):
        run(raw, tmp_path / "ds", "ECOMMERCE")


def test_the_default_output_is_unchanged(raw, tmp_path: Path) -> None:
    out = tmp_path / "custom"
    result = run(raw, out, None)
    assert sorted(p.name for p in out.iterdir()) == [
        "interactions.csv", "interactions.schema.json", "items.csv", "items.schema.json",
    ]  # fmt: skip
    assert (out / "interactions.csv").read_text() == CUSTOM_INTERACTIONS
    items = (out / "items.csv").read_text().splitlines()
    assert items[0] == "ITEM_ID,TITLE,URL,CATEGORIES,DURATION,CREATION_TIMESTAMP"
    assert len(items) == 4  # v3 kept, with empty categories
    schema = json.loads((out / "items.schema.json").read_text())
    assert {"name": "CATEGORIES", "type": ["string", "null"], "categorical": True} in (
        schema["fields"]
    )
    assert "2 watched, 2 clicked" in result.summary()


def test_the_cli_flag(raw, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log, catalog = raw
    out = tmp_path / "cli"
    argv = ["prepare", "--watch-log", str(log), "--items", str(catalog), "--out", str(out)]
    assert main([*argv, "--domain", "video-on-demand", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert MISSING_GENRES in printed and "2 Watch, 2 Click" in printed
    assert read_domain(out) == DOMAIN_VIDEO_ON_DEMAND
    assert set(DOMAINS.values()) == {DOMAIN_VIDEO_ON_DEMAND}


def test_the_local_engine_trains_the_same_model_on_vod_data(tmp_path: Path) -> None:
    synthesize(SynthConfig(users=80, items=40, events=2500, seed=3), tmp_path / "raw")
    log, catalog = tmp_path / "raw" / "watch_log.csv", tmp_path / "raw" / "items.csv"
    run((log, catalog), tmp_path / "custom", None)
    run((log, catalog), tmp_path / "vod", DOMAIN_VIDEO_ON_DEMAND)
    custom_table = read_interactions(tmp_path / "custom")
    vod_table = read_interactions(tmp_path / "vod")
    assert set(vod_table.column("EVENT_TYPE").to_pylist()) == {"Watch", "Click"}

    params = TrainParams(factors=8, iterations=5, random_state=0)
    assert params.weight_of("Watch") == params.weight_of("watched")
    assert params.weight_of("Click") == params.weight_of("clicked")
    custom = fit_model(custom_table, params)
    vod = fit_model(vod_table, params)
    np.testing.assert_array_equal(custom.user_ids, vod.user_ids)
    np.testing.assert_array_equal(custom.item_ids, vod.item_ids)
    np.testing.assert_array_equal(custom.user_factors, vod.user_factors)
    np.testing.assert_array_equal(custom.similar_indices, vod.similar_indices)
    for model in (custom, vod):
        assert model.user_factors.any()
    for user in range(len(custom.user_ids)):
        seen = custom.history_indices[custom.history_indptr[user] : custom.history_indptr[user + 1]]
        expected = recommend_scores(custom.user_factors[user], custom.item_factors, seen, 10)
        got = recommend_scores(vod.user_factors[user], vod.item_factors, seen, 10)
        assert custom.item_ids[expected[0]].tolist() == vod.item_ids[got[0]].tolist()
        np.testing.assert_allclose(expected[1], got[1])
