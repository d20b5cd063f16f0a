"""The point-in-time join of BENCHMARKS.md written by hand in DuckDB (ASOF joins), for a
side-by-side comparison with Quiver on the same files.

    python pit_duckdb.py DIR SPINE_ROWS            # time it, print one JSON line
    python pit_duckdb.py DIR SPINE_ROWS --compare  # compare its output with Quiver's, cell by cell

Semantics as Quiver's: per spine row and view, the latest row with the same key and
event_timestamp <= t, ties broken by the latest `created`; older than the ttl -> null.
"""

import json
import resource
import sys
import time

import duckdb

VIEWS = [("stats_a", "a_id", "2 HOUR"), ("stats_b", "b_id", "2 DAY")]


def build(con, d, spine):
    for view, key, _ in VIEWS:
        con.execute(
            f"""CREATE VIEW {view} AS
                SELECT {key}, event_timestamp, f1, f2, f3 FROM read_parquet('{d}/lake/{view}/*.parquet')
                QUALIFY row_number() OVER (PARTITION BY {key}, event_timestamp ORDER BY created DESC) = 1"""
        )
    cols = ["s.*"]
    joins = []
    for view, key, ttl in VIEWS:
        alias = view
        for f in ("f1", "f2", "f3"):
            cols.append(
                f"CASE WHEN {alias}.event_timestamp >= s.event_timestamp - INTERVAL {ttl} "
                f"THEN {alias}.{f} END AS {view}__{f}"
            )
        joins.append(
            f"ASOF LEFT JOIN {view} {alias} ON s.{key} = {alias}.{key} "
            f"AND s.event_timestamp >= {alias}.event_timestamp"
        )
    return f"SELECT {', '.join(cols)} FROM read_parquet('{spine}') s {' '.join(joins)} ORDER BY s.label"


def main():
    d, rows = sys.argv[1], int(sys.argv[2])
    spine = f"{d}/spine-{rows}.parquet"
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    query = build(con, d, spine)
    if "--compare" in sys.argv:
        ours = con.sql(query).to_arrow_table()
        quiver = con.sql(f"SELECT * FROM read_parquet('{d}/out_quiver.parquet')").to_arrow_table()
        assert ours.num_rows == quiver.num_rows, (ours.num_rows, quiver.num_rows)
        diff = 0
        for name in quiver.column_names:
            a, b = ours.column(name).to_pylist(), quiver.column(name).to_pylist()
            diff += sum(1 for x, y in zip(a, b) if x != y)
        nulls = sum(quiver.column(n).null_count for n in quiver.column_names if "__" in n)
        print(json.dumps({"rows": quiver.num_rows, "cells_compared": quiver.num_rows * quiver.num_columns,
                          "differing_cells": diff, "null_feature_cells": nulls}))
        return
    start = time.perf_counter()
    con.execute(f"COPY ({query}) TO '{d}/out_duckdb.parquet' (FORMAT parquet)")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": "duckdb " + duckdb.__version__, "spine_rows": rows, "seconds": round(seconds, 2),
                      "rows_per_s": round(rows / seconds), "peak_rss_mib": round(peak)}))


if __name__ == "__main__":
    main()
