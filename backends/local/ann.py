"""Approximate top-n by inner product for large catalogs (faiss IVF or HNSW indexes).

Exact scoring reads every item's factors per batch: at 1M items x 64 factors that is
256 MB per matrix product, tens of milliseconds. With the softmax normaliser stored per
user (`user_log_normalizer`), a recommendation needs only the n best dot products, which
an inverted-file index finds by scanning the `nprobe` cells (of `nlist` k-means cells)
whose centroids score best for the user: a few percent of the catalog.

The IVF index lives in memory, built when the model loads (seconds at 1M items; only for
catalogs above `LocalBackendConfig.ann_min_items`). On ALS and random factors it needs a
large share of its cells for recall 0.95 (bench/README.md, "Catalog size"), so there is a
second kind: an HNSW graph (`HnswIndex`), which walks from item to item towards the best dot
products and reaches that recall reading a few thousand items. Building it takes minutes at
1M items, so `recs index` builds it once and stores it in the model directory, where the
server loads it (`ann_index = "hnsw"`).

Both store the item vectors themselves, so the distances faiss returns are the exact dot
products of the items found: scores match exact scoring for those items; only which items
are found is approximate (measure recall with bench/bench_catalog_scale.py).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# Items used to train the k-means cells (faiss wants at least ~39 per cell).
_TRAIN_SAMPLE_PER_CELL = 64


class InnerProductIndex:
    """Top-k items by dot product with a query, approximately (faiss IndexIVFFlat)."""

    def __init__(
        self,
        item_factors: np.ndarray,
        nlist: int | None = None,
        nprobe: int | None = None,
        probe_fraction: float = 0.45,
        seed: int = 0,
    ) -> None:
        """Cells: `nlist` (default sqrt(items)); scanned per search: `nprobe`, by default
        `probe_fraction` of the cells."""
        import faiss  # a heavy import, needed only by large catalogs

        started = time.perf_counter()
        vectors = np.ascontiguousarray(item_factors, dtype=np.float32)
        num_items, dim = vectors.shape
        self.nlist = nlist or max(1, min(num_items // 39, int(math.sqrt(num_items))))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, self.nlist, faiss.METRIC_INNER_PRODUCT)
        sample_size = min(num_items, self.nlist * _TRAIN_SAMPLE_PER_CELL)
        sample = np.random.default_rng(seed).choice(num_items, sample_size, replace=False)
        index.train(vectors[np.sort(sample)])
        index.add(vectors)
        index.nprobe = min(nprobe or max(1, round(probe_fraction * self.nlist)), self.nlist)
        # Searches run on the server's one scoring thread: OpenMP threads would spin
        # against the event loop for the same two cores. Building used them all.
        faiss.omp_set_num_threads(1)
        self._quantizer, self._index = quantizer, index  # the index uses the quantizer
        self.num_items = num_items
        logger.info(
            "inner-product index: %d items in %d cells (nprobe %d), built in %.1f s",
            num_items,
            self.nlist,
            index.nprobe,
            time.perf_counter() - started,
        )

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, dot products), each (queries, k), best first; -1 pads misses."""
        k = min(max(k, 1), self.num_items)
        dots, items = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return items, dots


HNSW_FILE = "ann_hnsw.faiss"


class HnswIndex:
    """Top-k items by dot product with a query, approximately (faiss IndexHNSWFlat)."""

    def __init__(self, index: object, ef_search: int) -> None:
        self._index = index
        self.ef_search = ef_search
        self.num_items = int(index.ntotal)  # type: ignore[attr-defined]
        self.dim = int(index.d)  # type: ignore[attr-defined]

    @classmethod
    def build(
        cls,
        item_factors: np.ndarray,
        neighbours: int = 32,
        ef_construction: int = 80,
        ef_search: int = 1024,
        on_progress: Callable[[float], None] | None = None,
    ) -> HnswIndex:
        """Link every item into the graph (`neighbours` links per item), on every core."""
        import faiss

        vectors = np.ascontiguousarray(item_factors, dtype=np.float32)
        index = faiss.IndexHNSWFlat(vectors.shape[1], neighbours, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        step = max(1, len(vectors) // 20)
        for start in range(0, len(vectors), step):
            index.add(vectors[start : start + step])
            if on_progress is not None:
                on_progress(min(start + step, len(vectors)) / len(vectors))
        faiss.omp_set_num_threads(1)
        return cls(index, ef_search)

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically (a reader never sees half a file)."""
        import faiss

        partial = path.with_name(path.name + ".partial")
        faiss.write_index(self._index, str(partial))
        partial.replace(path)

    @classmethod
    def load(cls, path: Path, ef_search: int = 1024) -> HnswIndex:
        """The index stored at `path` (memory-mapped by faiss where it can)."""
        import faiss

        faiss.omp_set_num_threads(1)  # searches run on the server's one scoring thread
        return cls(faiss.read_index(str(path)), ef_search)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, dot products), each (queries, k), best first; -1 pads misses."""
        import faiss

        k = min(max(k, 1), self.num_items)
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        dots, items = self._index.search(  # type: ignore[attr-defined]
            np.ascontiguousarray(queries, dtype=np.float32), k, params=params
        )
        return items, dots
