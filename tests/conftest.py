"""Suite-wide setup: single-threaded BLAS for implicit, even when pytest is run directly."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
