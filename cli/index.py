"""`recs index`: build the HNSW index of a model's items and store it in the model directory.

The server uses it when configured with `ann_index = "hnsw"` (and `ann_min_items`): a graph
over 1M items takes minutes to build, so it is built once here, not at every start.
"""

from __future__ import annotations

import argparse
import logging
import time

from recs.cli.options import add_model_dir, at_least, load_local_model

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `index` subcommand."""
    parser = subparsers.add_parser(
        "index",
        help="build the approximate (HNSW) index of a model's items for large catalogs",
        description=(
            "Build a faiss HNSW inner-product index over the item factors of MODEL_DIR and "
            "store it there (ann_hnsw.faiss, replaced atomically). `recs serve` uses it with "
            '[local] ann_index = "hnsw" and ann_min_items at most the number of items; the '
            "model must store user_log_normalizer.npy (log_normalizers = true at training)."
        ),
    )
    add_model_dir(parser)
    parser.add_argument(
        "--neighbours",
        type=at_least(2),
        default=32,
        metavar="M",
        help="links per item (default 32)",
    )
    parser.add_argument(
        "--ef-construction",
        type=at_least(1),
        default=80,
        metavar="N",
        help="candidates kept while linking (default 80; more: better graph, slower build)",
    )
    parser.set_defaults(handler=run_index)


def run_index(args: argparse.Namespace) -> int:
    """Handler of `recs index`; returns the exit status."""
    from recs.backends.local.ann import HNSW_FILE, HnswIndex
    from recs.pipeline.progress import every_step

    model = load_local_model(args.model, "index")
    if model is None:
        return 2
    if model.user_log_normalizer is None:
        logger.warning(
            "%s has no user_log_normalizer.npy: the server will score exactly until the "
            "model is trained with log_normalizers = true",
            args.model,
        )
    started = time.perf_counter()
    report = every_step(
        lambda done: logger.info("linked %3.0f%% of %d items", 100 * done, model.num_items)
    )

    index = HnswIndex.build(
        model.item_factors,
        neighbours=args.neighbours,
        ef_construction=args.ef_construction,
        on_progress=report,
    )
    path = args.model / HNSW_FILE
    index.save(path)
    print(
        f"indexed {model.num_items:,} items in {time.perf_counter() - started:.1f}s "
        f"-> {path} ({path.stat().st_size / 2**20:.1f} MiB)"
    )
    return 0
