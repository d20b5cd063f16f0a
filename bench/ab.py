"""Two builds compared from the records bench/ab.sh writes.

    python3 bench/ab.py RESULTS_DIR A_COMMIT B_COMMIT

Per workload and parameters, the median of each build's runs (all runs listed), and B ÷ A
of the medians: below 1 means B is faster. Prints one Markdown table.
Python standard library only.
"""

import statistics
import sys

from report import load, memory, ms, seconds, table

# (workload, figure, how it is shown, what the parameters are)
FIGURES = [
    ("materialize", "seconds", seconds, lambda p: f"{p['rows']:,} rows"),
    ("materialize", "peak_rss_mib", memory, lambda p: f"{p['rows']:,} rows, peak RSS"),
    ("training_memory", "wall_s", seconds, lambda p: f"{p['spine_rows']:,}-row spine, {p['memory_limit']}"),
    ("training_memory", "peak_rss_mib", memory, lambda p: f"{p['spine_rows']:,}-row spine, peak RSS"),
    ("grpc", "p50_ms", ms, lambda p: f"batch {p['batch']}, p50"),
    ("grpc", "p99_ms", ms, lambda p: f"batch {p['batch']}, p99"),
]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    records, a, b = load(sys.argv[1]), sys.argv[2], sys.argv[3]
    rows = []
    for workload, figure, show, label in FIGURES:
        groups = {}
        for r in records.get(workload, []):
            if figure not in r or r.get("ok", 1) != 1:
                continue
            key = tuple(sorted(r["params"].items()))
            groups.setdefault(key, {}).setdefault(r["commit"], []).append(r[figure])
        for key, by in sorted(groups.items()):
            va, vb = by.get(a, []), by.get(b, [])
            if not va or not vb:
                continue
            ma, mb = statistics.median(va), statistics.median(vb)
            rows.append(
                [
                    f"{workload}: {label(dict(key))}",
                    f"{show(ma)} ({', '.join(show(v) for v in va)})",
                    f"{show(mb)} ({', '.join(show(v) for v in vb)})",
                    f"{mb / ma:.2f}×" if ma else "–",
                ]
            )
    print(table(["workload", f"A {a}: median (runs)", f"B {b}: median (runs)", "B ÷ A"], rows))


if __name__ == "__main__":
    main()
