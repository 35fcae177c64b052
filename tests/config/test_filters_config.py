"""`[filters]` and `[server] default_filter` in the serve config: parsed before anything
serves, a bad one refused naming the filter and the position; the local engine's catalog for
Items filters defaults to the top-level `catalog`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recs.backends.errors import ModelLoadError
from recs.backends.filtering import DEFAULT_FILTER_EXPRESSION, DEFAULT_FILTER_NAME
from recs.backends.local.backend import LocalBackend
from recs.backends.local.params import TrainParams
from recs.backends.local.train import train
from recs.config import ConfigError, build_config, create_configured_backend, load_config
from tests.aws import fake_aws_environment  # noqa: F401  (no way to reach AWS)
from tests.backends.contract import TINY_DATASET
from tests.backends.personalize.runtime_helpers import CAMPAIGNS

RECS = [str(Path(sys.executable).parent / "recs")]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
ITEMS = TINY_DATASET / "items.csv"

UNWATCHED = 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("watched")'
IN_CATEGORIES = "INCLUDE ItemID WHERE Items.CATEGORIES IN ($CATEGORIES)"
# "INCLUDE ItemID " is 15 characters: the misspelt WHERE starts at character 16.
MISSPELT = 'INCLUDE ItemID WHER Items.CATEGORIES IN ("animals")'


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("filters-config") / "model"
    train(TINY_DATASET, out, TrainParams(factors=4, iterations=3, random_state=0))
    return out


def local_config(model: Path | str = "m", **extra: object):
    return build_config({"backend": "local", "local": {"model_dir": str(model)}, **extra})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serve.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- parsing ----------------------------------------------------------------------------------


def test_the_filters_table_is_read_from_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[server]
default_filter = "unwatched"

[filters]
unwatched = '{UNWATCHED}'
in_categories = "{IN_CATEGORIES}"

[local]
model_dir = "m"
""",
    )
    config = load_config(path)
    assert config.filters == {"unwatched": UNWATCHED, "in_categories": IN_CATEGORIES}
    filters = config.filter_set()
    assert set(filters.filters) == {"unwatched", "in_categories"}
    assert filters.default is not None and filters.default.name == "unwatched"


def test_without_filters_the_built_in_default_applies() -> None:
    config = local_config()
    assert config.filters == {}
    assert config.server.default_filter == DEFAULT_FILTER_NAME
    filters = config.filter_set()
    assert filters.default is not None and filters.default.name == DEFAULT_FILTER_NAME
    assert filters.details() == {
        "default_filter": DEFAULT_FILTER_NAME,
        f"filters.{DEFAULT_FILTER_NAME}": DEFAULT_FILTER_EXPRESSION,
    }


def test_a_bad_expression_names_the_filter_and_the_character() -> None:
    config = local_config(filters={"unwatched": UNWATCHED, "broken": MISSPELT})
    with pytest.raises(ConfigError) as caught:
        config.filter_set()
    message = str(caught.value)
    assert message.startswith("[filters]: filter 'broken' at character 16:")
    assert "expected WHERE" in message and "'WHER'" in message


@pytest.mark.parametrize(
    ("expression", "position"),
    [
        ('INCLUDE ItemID WHERE Items.CATEGORIES IN ("animals"', 52),  # ')' missing: the end
        ('INCLUDE ItemID WHERE Items.CATEGORIES IN ("animals") ;', 54),  # a stray character
        ('INCLUDE ItemID WHERE Users.AGE IN ("30")', 22),  # no Users dataset
    ],
)
def test_the_position_is_the_character_where_the_expression_goes_wrong(
    expression: str, position: int
) -> None:
    config = local_config(filters={"bad": expression})
    with pytest.raises(ConfigError, match=rf"filter 'bad' at character {position}\b"):
        config.filter_set()


def test_a_bad_expression_stops_create_configured_backend() -> None:
    config = local_config(filters={"broken": MISSPELT})
    with pytest.raises(ConfigError, match=r"filter 'broken' at character 16"):
        create_configured_backend(config)


def test_a_filter_that_is_not_text_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"filters\.broken"):
        local_config(filters={"broken": 3})


def test_an_unknown_default_filter_is_refused_naming_it() -> None:
    config = local_config(server={"default_filter": "unwathced"}, filters={"unwatched": UNWATCHED})
    with pytest.raises(ConfigError) as caught:
        config.filter_set()
    message = str(caught.value)
    assert "default_filter 'unwathced' is not a filter of [filters]" in message
    assert "known: unwatched" in message
    with pytest.raises(ConfigError, match="unwathced"):
        create_configured_backend(config)


def test_a_default_filter_with_parameters_is_refused() -> None:
    config = local_config(
        server={"default_filter": "in_categories"}, filters={"in_categories": IN_CATEGORIES}
    )
    with pytest.raises(ConfigError, match=r"default_filter 'in_categories' takes parameters"):
        config.filter_set()


def test_an_empty_default_filter_means_none() -> None:
    config = local_config(server={"default_filter": ""}, filters={"unwatched": UNWATCHED})
    filters = config.filter_set()
    assert filters.default is None
    assert "unwatched" in filters.filters
    assert filters.details()["default_filter"] == "none"


def test_the_default_filter_may_name_a_configured_one() -> None:
    config = local_config(server={"default_filter": "unwatched"}, filters={"unwatched": UNWATCHED})
    backend = create_configured_backend(config)
    assert backend.filters.default is not None
    assert backend.filters.default.name == "unwatched"
    assert backend.filters.details()["default_filter"] == "unwatched"


def test_create_configured_backend_gives_the_backend_its_filters() -> None:
    config = local_config(filters={"unwatched": UNWATCHED})
    backend = create_configured_backend(config)
    assert set(backend.filters.filters) == {"unwatched", DEFAULT_FILTER_NAME}


# --- the catalog Items filters read -----------------------------------------------------------


def test_the_local_catalog_defaults_to_the_top_level_one() -> None:
    backend = create_configured_backend(local_config(catalog=str(ITEMS)))
    assert isinstance(backend, LocalBackend)
    assert backend.config.catalog == ITEMS


def test_an_explicit_local_catalog_wins() -> None:
    config = build_config(
        {
            "backend": "local",
            "catalog": str(ITEMS),
            "local": {"model_dir": "m", "catalog": str(TINY_DATASET)},
        }
    )
    backend = create_configured_backend(config)
    assert isinstance(backend, LocalBackend)
    assert backend.config.catalog == TINY_DATASET


def test_without_any_catalog_the_local_engine_has_none() -> None:
    backend = create_configured_backend(local_config())
    assert isinstance(backend, LocalBackend)
    assert backend.config.catalog is None


def test_the_local_fallback_of_personalize_gets_the_catalog_and_the_filters() -> None:
    config = build_config(
        {
            "backend": "personalize",
            "catalog": str(ITEMS),
            "filters": {"unwatched": UNWATCHED},
            "personalize": {"region": "us-east-1", "fallback": "local", **CAMPAIGNS},
            "local": {"model_dir": "m"},
        }
    )
    backend = create_configured_backend(config)
    fallback = backend.fallback  # type: ignore[attr-defined]
    assert isinstance(fallback, LocalBackend)
    assert fallback.config.catalog == ITEMS
    assert fallback.filters is backend.filters
    assert "unwatched" in fallback.filters.filters


# --- start-up -----------------------------------------------------------------------------------


def test_a_filter_on_a_column_the_catalog_lacks_stops_start_up(model_dir: Path) -> None:
    config = local_config(
        model_dir,
        catalog=str(ITEMS),
        filters={"by_genre": 'INCLUDE ItemID WHERE Items.GENRE IN ("jazz")'},
    )
    backend = create_configured_backend(config)
    with pytest.raises(ModelLoadError) as caught:
        backend.start()
    message = str(caught.value)
    assert "filter 'by_genre' uses Items.GENRE" in message
    assert "the catalog has no column GENRE" in message
    assert "CATEGORIES" in message  # and says which columns it has


def test_a_current_item_filter_on_a_missing_column_stops_start_up(model_dir: Path) -> None:
    config = local_config(
        model_dir,
        catalog=str(ITEMS),
        filters={"same_genre": "INCLUDE ItemID WHERE Items.CATEGORIES IN CurrentItem.GENRE"},
    )
    with pytest.raises(ModelLoadError, match=r"filter 'same_genre' uses Items\.GENRE"):
        create_configured_backend(config).start()


def test_an_items_filter_without_a_catalog_stops_start_up(model_dir: Path) -> None:
    config = local_config(model_dir, filters={"short": "INCLUDE ItemID WHERE Items.DURATION < 30"})
    with pytest.raises(ModelLoadError) as caught:
        create_configured_backend(config).start()
    message = str(caught.value)
    assert "filter 'short' uses Items.DURATION" in message
    assert "no catalog is configured" in message


def test_items_filters_start_with_the_top_level_catalog(model_dir: Path) -> None:
    config = local_config(
        model_dir,
        catalog=str(ITEMS),
        filters={"short": "INCLUDE ItemID WHERE Items.DURATION < 30", "unwatched": UNWATCHED},
    )
    backend = create_configured_backend(config)
    backend.start()
    try:
        call = backend.filters.resolve("short", {})
        answer = backend.popular_items(25, None, call)
        assert set(answer.item_ids) == {"a3", "b1", "b2", "p"}
    finally:
        backend.close()


def test_interactions_filters_need_no_catalog(model_dir: Path) -> None:
    backend = create_configured_backend(local_config(model_dir, filters={"unwatched": UNWATCHED}))
    backend.start()
    backend.close()


# --- `recs serve --config` ----------------------------------------------------------------------


def serve(path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*RECS, "serve", "--config", str(path), *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def test_recs_serve_refuses_a_bad_filter_with_exit_2_and_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"[server]\nport = 0\n[filters]\nbroken = '{MISSPELT}'\n[local]\nmodel_dir = \"m\"\n",
    )
    done = serve(path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "recs serve: [filters]: filter 'broken' at character 16: expected WHERE, found 'WHER'"
    ]


def test_recs_serve_refuses_an_unknown_default_filter_with_exit_2(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nport = 0\ndefault_filter = "nope"\n[local]\nmodel_dir = "m"\n',
    )
    done = serve(path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("recs serve: [filters]: default_filter 'nope' is not a filter")


def test_recs_serve_with_workers_refuses_a_bad_filter_with_exit_2_and_one_line(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        f"[server]\nport = 0\nworkers = 2\n[filters]\nbroken = '{MISSPELT}'\n"
        '[local]\nmodel_dir = "m"\n',
    )
    done = serve(path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "recs serve: [filters]: filter 'broken' at character 16: expected WHERE, found 'WHER'"
    ]


def test_recs_serve_stops_when_a_filter_uses_a_column_the_catalog_lacks(
    tmp_path: Path, model_dir: Path
) -> None:
    path = write(
        tmp_path,
        f'catalog = "{ITEMS}"\n[server]\nport = 0\n'
        "[filters]\nby_genre = 'INCLUDE ItemID WHERE Items.GENRE IN (\"jazz\")'\n"
        f'[local]\nmodel_dir = "{model_dir}"\n',
    )
    done = serve(path, timeout=120)
    assert done.returncode == 2
    assert "filter 'by_genre' uses Items.GENRE" in done.stderr
    assert "no column GENRE" in done.stderr
    assert "SERVING with backend" not in done.stderr
