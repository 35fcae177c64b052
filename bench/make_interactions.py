"""Turn a `recs synth` watch log into a prepared interactions.csv (stand-in for `recs prepare`).

Applies the dataset's labelling rule (watched when watch_duration / video_duration is
more than 0.5, else clicked; EVENT_VALUE is that ratio) with pyarrow, for benchmarks
that need a prepared dataset without depending on the pipeline.

    python bench/make_interactions.py WATCH_LOG OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv


def main(watch_log: str, out_dir: str) -> None:
    log = pacsv.read_csv(watch_log)
    ratio = pc.divide(
        pc.cast(log["watch_duration"], pa.float64()), pc.cast(log["video_duration"], pa.float64())
    )
    table = pa.table(
        {
            "USER_ID": log["user_id"],
            "ITEM_ID": log["item_id"],
            "TIMESTAMP": pc.cast(log["timestamp"], pa.int64()),
            "EVENT_TYPE": pc.if_else(pc.greater(ratio, 0.5), "watched", "clicked"),
            "EVENT_VALUE": ratio,
        }
    )
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / "interactions.csv"
    path.write_text(",".join(table.column_names) + "\n")  # unquoted header, as prepare writes
    with path.open("ab") as sink:
        pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
