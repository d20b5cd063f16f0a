"""The tables and plots of BENCHMARKS.md, from the records bench/run.sh writes.

    python3 bench/report.py RESULTS_DIR [--plots DIR]

Reads RESULTS_DIR/*.jsonl (records described in bench/record.py), prints one Markdown table
per workload (Quiver beside each peer, the ratio, the date, the commit and the commands that
reproduce each line) and, with --plots, writes SVG line plots into DIR:

    pit.svg               training-set seconds against spine rows, Quiver and DuckDB
    online-latency.svg    p50 and p99 against batch size: Quiver gRPC, Quiver store-level,
                          the raw Redis GET floor, Feast
    materialize.svg       materialization seconds against rows, Quiver and Feast

Python standard library only; the SVG is written by hand.
"""

import argparse
import glob
import json
import math
import os
import sys
from xml.sax.saxutils import escape

# ---------------------------------------------------------------------------------------------
# Reading


def load(results_dir):
    records = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "*.jsonl"))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    r = json.loads(line)
                    records.setdefault(r["workload"], []).append(r)
    return records


def index(records, key):
    """{(engine, key value): record}, the last record winning."""
    out = {}
    for r in records:
        out[(r["engine"], r["params"].get(key))] = r
    return out


# ---------------------------------------------------------------------------------------------
# Formatting


def count(n):
    """1000000 -> '1 M', 300000 -> '300 k', 7300000 -> '7.3 M'."""
    if n is None:
        return "–"
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div:
            v = n / div
            text = f"{v:.1f}".rstrip("0").rstrip(".") if v < 100 else f"{v:.0f}"
            return f"{text} {unit}"
    return str(n)


def seconds(s):
    if s is None:
        return "–"
    if s >= 100:
        return f"{s:.0f} s"
    if s >= 10:
        return f"{s:.1f} s"
    return f"{s:.2f} s"


def ms(v):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.3f} ms" if v < 1 else f"{v:.2f} ms"


def memory(mib):
    if mib is None:
        return "–"
    return f"{mib / 1024:.2f} GiB" if mib >= 1024 else f"{mib:.0f} MiB"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r < 10 else f"{r:.1f}×"


def rate(v):
    return "–" if v is None else f"{v:,.0f}".replace(",", " ")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


ENGINE_NAMES = {
    "quiver": "Quiver",
    "quiver-grpc": "Quiver gRPC",
    "quiver-store": "Quiver store-level read",
    "redis-get": "raw MGET (floor)",
    "duckdb": "DuckDB",
    "feast": "Feast",
    "quiver-http": "Quiver HTTP",
    "feast-http": "Feast feature server",
}


def engine_label(r):
    if r["engine"] == "redis-get":
        return f"raw MGET (Redis {r['version']})" if r.get("version") else ENGINE_NAMES["redis-get"]
    name = ENGINE_NAMES.get(r["engine"], r["engine"])
    return f"{name} {r['version']}" if r.get("version") else name


def provenance(records):
    """The date, commit, host and run line under a table, then the commands."""
    dates = sorted({r["date"][:10] for r in records})
    commits = sorted({r["commit"] for r in records})
    hosts = sorted({(r["host"]["cpus"], r["host"]["mem_gib"]) for r in records})
    runs = sorted({r["run"] for r in records if r.get("run")})
    when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    where = ", ".join(f"{c} CPUs, {m} GiB" for c, m in hosts)
    text = f"Measured {when} (UTC) at commit `{'`, `'.join(commits)}` on {where}"
    if runs:
        text += f", by `{'`, `'.join(runs)}`"
    lines = [text + ". Commands:", ""]
    commands = {}
    for r in records:
        if r["engine"] == "compare":
            continue
        labels = commands.setdefault(r["command"], [])
        if engine_label(r) not in labels:
            labels.append(engine_label(r))
    lines += [f"- `{cmd}` ({', '.join(labels)})" for cmd, labels in commands.items()]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Tables


def pit_table(records):
    by = index(records, "spine_rows")
    spines = sorted({r["params"]["spine_rows"] for r in records if r["engine"] == "quiver"})
    peer = next((r for r in records if r["engine"] == "duckdb"), None)
    peer_name = engine_label(peer) if peer else "DuckDB"
    header = [
        "spine rows",
        "feature rows",
        "Quiver",
        peer_name,
        f"Quiver ÷ {peer_name.split()[0]}",
        "Quiver peak RSS",
        f"{peer_name.split()[0]} peak RSS",
        "differing cells",
    ]
    rows = []
    for s in spines:
        q, d, c = by.get(("quiver", s)), by.get(("duckdb", s)), by.get(("compare", s))
        rows.append(
            [
                count(s),
                count(q["params"].get("feature_rows")),
                seconds(q.get("seconds")),
                seconds(d.get("seconds")) if d else "–",
                ratio(q.get("seconds"), d.get("seconds")) if d else "–",
                memory(q.get("peak_rss_mib")),
                memory(d.get("peak_rss_mib")) if d else "–",
                f"{c['differing_cells']} of {count(c['cells_compared'])}" if c else "not compared",
            ]
        )
    return table(header, rows)


def latency_rows(records, first, second, ratio_of):
    """p50 and p99 of engines `first` and `second` per batch, then the two ratios;
    `ratio_of(first_ms, second_ms)` orders each ratio."""
    by = index(records, "batch")
    rows = []
    for b in sorted({r["params"]["batch"] for r in records}):
        a, z = by.get((first, b), {}), by.get((second, b), {})
        rows.append(
            [b, ms(a.get("p50_ms")), ms(a.get("p99_ms")), ms(z.get("p50_ms")), ms(z.get("p99_ms"))]
            + [ratio_of(a.get(k), z.get(k)) for k in ("p50_ms", "p99_ms")]
        )
    return rows


def online_table(records):
    header = ["batch", "Quiver p50", "Quiver p99", "floor p50", "floor p99", "Quiver ÷ floor, p50", "p99"]
    return table(header, latency_rows(records, "quiver-store", "redis-get", lambda q, f: ratio(q, f)))


def grpc_table(records):
    peer = next((r for r in records if r["engine"] == "feast"), None)
    peer_name = engine_label(peer) if peer else "Feast"
    header = ["batch", "Quiver gRPC p50", "p99", f"{peer_name} p50", "p99", "Feast ÷ Quiver, p50", "p99"]
    return table(header, latency_rows(records, "quiver-grpc", "feast", lambda q, f: ratio(f, q)))


def throughput_table(records):
    batches = sorted({r["params"]["batch"] for r in records})
    levels = sorted({r["params"]["concurrency"] for r in records})
    by = {(r["params"]["batch"], r["params"]["concurrency"]): r for r in records}
    header = ["batch"] + [f"concurrency {c} (rows/s)" for c in levels]
    rows = [[b] + [rate(by.get((b, c), {}).get("rows_per_s")) for c in levels] for b in batches]
    return table(header, rows)


def materialize_table(records):
    by = index(records, "rows")
    sizes = sorted({r["params"]["rows"] for r in records})
    peer = next((r for r in records if r["engine"] == "feast"), None)
    peer_name = engine_label(peer) if peer else "Feast"
    header = [
        "rows",
        "drivers",
        "Quiver",
        peer_name,
        "Feast ÷ Quiver",
        "Quiver peak RSS",
        "Feast peak RSS",
        "online keys (Quiver / Feast)",
    ]
    rows = []
    for n in sizes:
        q, f = by.get(("quiver", n), {}), by.get(("feast", n), {})
        rows.append(
            [
                count(n),
                count(q.get("params", {}).get("drivers")),
                seconds(q.get("seconds")),
                seconds(f.get("seconds")),
                ratio(f.get("seconds"), q.get("seconds")),
                memory(q.get("peak_rss_mib")),
                memory(f.get("peak_rss_mib")),
                f"{rate(q.get('redis_keys'))} / {rate(f.get('online_rows'))}",
            ]
        )
    return table(header, rows)


def lake_table(records):
    header = ["driver_stats rows", "drivers / customers", "rows, all tables", "on disk", "seconds", "peak RSS"]
    rows = []
    for r in sorted(records, key=lambda r: r["params"]["rows"]):
        drivers = count(r["params"].get("drivers"))
        rows.append(
            [
                count(r["params"]["rows"]),
                f"{drivers} / {drivers}",
                count(r.get("rows_total")),
                f"{r['bytes'] / 1e6:.0f} MB" if r.get("bytes") else "–",
                seconds(r.get("wall_s")),
                memory(r.get("peak_rss_mib")),
            ]
        )
    return table(header, rows)


def training_memory_table(records):
    header = ["spine rows", "--memory-limit", "outcome", "seconds", "peak RSS"]
    rows = []
    for r in records:
        p = r["params"]
        outcome = f"{count(r.get('rows'))} rows" if r.get("ok") == 1 else f"failed: {r.get('error', '')[:80]}"
        rows.append([count(p.get("spine_rows")), p.get("memory_limit"), outcome, seconds(r.get("wall_s")), memory(r.get("peak_rss_mib"))])
    return table(header, rows)


def ballista_table(records, local_partitions="1"):
    """Per engine: the runs' wall times (median, min to max) and its ratio to the local engine.
    `local_partitions` is how the local engine splits the work (one join; one writer a core)."""
    import statistics

    runs = {}
    for r in records:
        runs.setdefault(r["engine"], []).append(r)
    local = runs.get("local")
    local_median = statistics.median(x["wall_s"] for x in local) if local else None
    header = ["engine", "executors × task slots", "partitions", "runs", "median", "min – max",
              "÷ local (median)", "client peak RSS", "executor peak RSS"]
    rows = []
    for engine in sorted(runs, key=lambda e: (e != "local", e)):
        rs = runs[engine]
        walls = [x["wall_s"] for x in rs]
        p = rs[0]["params"]
        shape = "–" if engine == "local" else f"{p.get('executors')} × {p.get('tasks_per_executor')}"
        median = statistics.median(walls)
        rows.append([
            engine, shape, local_partitions if engine == "local" else p.get("partitions"), len(rs), seconds(median),
            f"{seconds(min(walls))} – {seconds(max(walls))}", ratio(median, local_median),
            memory(max(x.get("peak_rss_mib") or 0 for x in rs)),
            memory(max((x.get("executor_peak_rss_mib") or 0 for x in rs), default=None) or None),
        ])
    return table(header, rows)


def python_online_table(records):
    """quiver_client, the raw generated stub and Feast, per batch: p50 / p99 / p99.9."""
    by = {(r["params"]["batch"], r["engine"]): r for r in records}
    header = ["batch", "engine", "p50", "p99", "p99.9", "against"]
    rows = []
    for batch in sorted({r["params"]["batch"] for r in records}):
        client, stub, feast = (by.get((batch, e)) for e in ("quiver-python", "quiver-stub", "feast"))
        for engine, r in (("quiver_client", client), ("raw gRPC stub", stub), ("Feast", feast)):
            if r is None:
                continue
            if r is client and stub:
                against = f"client ÷ stub: p50 {ratio(r['p50_ms'], stub['p50_ms'])}, p99 {ratio(r['p99_ms'], stub['p99_ms'])}"
            elif r is feast and client:
                against = f"Feast ÷ client: p50 {ratio(r['p50_ms'], client['p50_ms'])}, p99 {ratio(r['p99_ms'], client['p99_ms'])}"
            else:
                against = ""
            rows.append([batch, engine, ms(r["p50_ms"]), ms(r["p99_ms"]), ms(r["p999_ms"]), against])
    return table(header, rows)


def python_training_table(records):
    """A training set into pandas: quiver_client against Feast, every run, and the medians."""
    runs = [r for r in records if "seconds" in r]
    header = ["spine rows", "engine", "runs (s)", "median", "peak RSS (client)", "Feast ÷ client, medians"]
    rows = []
    for spine in sorted({r["params"]["spine_rows"] for r in runs}):
        median = {}
        for engine in ("quiver-python", "feast"):
            times = sorted(r["seconds"] for r in runs if r["engine"] == engine and r["params"]["spine_rows"] == spine)
            if times:
                median[engine] = times[len(times) // 2]
        for engine, label in (("quiver-python", "quiver_client"), ("feast", "Feast")):
            mine = [r for r in runs if r["engine"] == engine and r["params"]["spine_rows"] == spine]
            if not mine:
                continue
            peak = max((r.get("peak_rss_mib") or 0) for r in mine) or None
            rows.append([
                spine,
                label,
                ", ".join(seconds(r["seconds"]) for r in mine),
                seconds(median.get(engine)),
                memory(peak),
                ratio(median.get("feast"), median.get("quiver-python")) if engine == "feast" else "",
            ])
    return table(header, rows)


def http_table(records):
    """Quiver's POST /v1/online and Feast's feature server under wrk, per batch; with an
    offered-rate column when a rate was set and a run column when a setting ran more than
    once."""
    def setting(r):
        p = r["params"]
        return (p["batch"], p.get("rate", 0), p.get("run", 1))
    by = {(setting(r), r["engine"]): r for r in records}
    settings = sorted({k for k, _ in by})
    rated = any(rate_ for _, rate_, _ in settings)
    repeated = len({run for _, _, run in settings}) > 1
    header = (["batch"] + (["offered"] if rated else []) + (["run"] if repeated else [])
              + ["server", "p50", "p99", "p99.9", "requests/s", "errors", "CPU per request, server + Redis",
                 "Feast ÷ Quiver, p50 / p99 / requests/s"])
    rows = []
    for key in settings:
        batch, offered, run = key
        quiver, feast = by.get((key, "quiver-http")), by.get((key, "feast-http"))
        for r in (quiver, feast):
            if r is None:
                continue
            against = ""
            if r is feast and quiver:
                against = " / ".join(ratio(feast[k], quiver[k]) for k in ("p50_ms", "p99_ms", "requests_per_s"))
            errors = sum(v for k, v in r.items() if k.startswith("errors_"))
            cpu = "–"
            if "server_cpu_s" in r and r.get("requests"):
                per = lambda key: 1000 * r[key] / r["requests"]
                cpu = f"{ms(per('server_cpu_s'))} + {ms(per('redis_cpu_s'))}"
            rows.append([batch] + ([f"{offered}/s" if offered else "flat out"] if rated else [])
                        + ([run] if repeated else [])
                        + [engine_label(r), ms(r["p50_ms"]), ms(r["p99_ms"]), ms(r["p999_ms"]),
                           rate(r["requests_per_s"]), errors, cpu, against])
    return table(header, rows)


SECTIONS = [
    ("pit", "Point-in-time join (training sets)", pit_table),
    ("online", "Online store reads", online_table),
    ("grpc", "Online reads through gRPC, beside Feast", grpc_table),
    ("grpc_throughput", "gRPC throughput", throughput_table),
    ("materialize", "Materialization into the online store", materialize_table),
    ("lake", "Sample lake generator", lake_table),
    ("training_memory", "Training sets under a memory limit", training_memory_table),
    ("python_online", "Online reads from Python, beside Feast", python_online_table),
    ("python_training", "Training sets into pandas, beside Feast", python_training_table),
    ("http", "HTTP online reads (POST /v1/online) against Feast's feature server", http_table),
    ("ballista", "Training sets on the local engine and on a Ballista cluster", ballista_table),
    ("ballista_materialize", "Materialization on the local engine and on a Ballista cluster",
     lambda records: ballista_table(records, local_partitions="1 a core")),
]


# ---------------------------------------------------------------------------------------------
# SVG plots

COLOURS = {
    "quiver": "#1f66b3",
    "quiver-grpc": "#1f66b3",
    "quiver-store": "#2a9d4b",
    "redis-get": "#7a7a7a",
    "duckdb": "#e08a00",
    "feast": "#c8283c",
}
DASHED = {"redis-get"}


class Scale:
    """Maps data values to pixels along one axis, linear or logarithmic, with tick marks."""

    def __init__(self, values, lo_px, hi_px, log=None):
        values = [v for v in values if v is not None and v > 0]
        lo, hi = (min(values), max(values)) if values else (1.0, 10.0)
        if log is None:
            log = hi / lo >= 10
        self.log, self.lo_px, self.hi_px = log, lo_px, hi_px
        if log:
            self.lo = 10 ** math.floor(math.log10(lo) + 1e-9)
            self.hi = 10 ** math.ceil(math.log10(hi) - 1e-9)
            if self.hi <= self.lo:
                self.hi = self.lo * 10
            decades = round(math.log10(self.hi / self.lo))
            steps = (1, 2, 5) if decades <= 3 else (1,)
            ticks = []
            for e in range(round(math.log10(self.lo)), round(math.log10(self.hi)) + 1):
                for m in steps:
                    t = m * 10.0**e
                    if self.lo * (1 - 1e-9) <= t <= self.hi * (1 + 1e-9):
                        ticks.append(t)
            self.ticks = ticks
        else:
            step = nice_step(hi / 5)
            self.lo, self.hi = 0.0, step * math.ceil(hi / step - 1e-9)
            if self.hi == 0:
                self.hi = step
            self.ticks = [i * step for i in range(round(self.hi / step) + 1)]

    def __call__(self, v):
        if self.log:
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.lo_px + f * (self.hi_px - self.lo_px)


def nice_step(raw):
    e = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * e >= raw:
            return m * e
    return 10 * e


def tick_label(v, compact=True):
    """Tick text: 1k, 1M along a size axis (compact), plain numbers along a time axis."""
    if compact and v >= 1_000_000:
        return f"{v / 1_000_000:g}M"
    if compact and v >= 1_000:
        return f"{v / 1_000:g}k"
    if v >= 1:
        return f"{v:.0f}"
    return f"{v:g}"


def panel_svg(panel, x0, y0, width, height):
    """One plot: frame, grid, ticks, axis labels, the series' lines and points."""
    left, right, top, bottom = 64, 24, 30, 48
    px0, px1, py0, py1 = x0 + left, x0 + width - right, y0 + height - bottom, y0 + top
    xs = [x for s in panel["series"] for x, _ in s["points"]]
    ys = [y for s in panel["series"] for _, y in s["points"]]
    sx, sy = Scale(xs, px0, px1), Scale(ys, py0, py1)
    out = [
        f'<text x="{x0 + width / 2:.1f}" y="{y0 + 18}" text-anchor="middle" font-size="14" '
        f'font-weight="bold">{escape(panel["title"])}</text>'
    ]
    for t in sx.ticks:
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{py1}" x2="{x:.1f}" y2="{py0}" stroke="#e6e6e6"/>')
        out.append(f'<line x1="{x:.1f}" y1="{py0}" x2="{x:.1f}" y2="{py0 + 5}" stroke="#333"/>')
        out.append(f'<text x="{x:.1f}" y="{py0 + 18}" text-anchor="middle">{tick_label(t)}</text>')
    for t in sy.ticks:
        y = sy(t)
        out.append(f'<line x1="{px0}" y1="{y:.1f}" x2="{px1}" y2="{y:.1f}" stroke="#e6e6e6"/>')
        out.append(f'<line x1="{px0 - 5}" y1="{y:.1f}" x2="{px0}" y2="{y:.1f}" stroke="#333"/>')
        out.append(f'<text x="{px0 - 8}" y="{y + 4:.1f}" text-anchor="end">{tick_label(t, False)}</text>')
    out.append(f'<rect x="{px0}" y="{py1}" width="{px1 - px0}" height="{py0 - py1}" fill="none" stroke="#333"/>')
    xlabel = panel["xlabel"] + (" (log scale)" if sx.log else "")
    ylabel = panel["ylabel"] + (" (log scale)" if sy.log else "")
    out.append(f'<text x="{(px0 + px1) / 2:.1f}" y="{py0 + 38}" text-anchor="middle">{escape(xlabel)}</text>')
    cy = (py0 + py1) / 2
    out.append(
        f'<text x="{x0 + 16}" y="{cy:.1f}" text-anchor="middle" transform="rotate(-90 {x0 + 16} {cy:.1f})">'
        f"{escape(ylabel)}</text>"
    )
    for s in panel["series"]:
        pts = sorted(p for p in s["points"] if p[1] is not None and p[1] > 0)
        if not pts:
            continue
        colour = COLOURS.get(s["engine"], "#000")
        dash = ' stroke-dasharray="6 4"' if s["engine"] in DASHED else ""
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in pts:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{colour}"/>')
    return out


def svg(title, panels, legend, note="", panel_width=440, panel_height=330):
    """Panels side by side under a title (and a warning note, if any), one legend below."""
    if len(panels) == 1:
        panel_width, panel_height = 640, 380
    width = panel_width * len(panels)
    legend_rows = math.ceil(len(legend) / 3)
    top = 30 + (20 if note else 0)
    height = top + 6 + panel_height + 14 + 22 * legend_rows
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12" fill="#222">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">{escape(title)}</text>',
    ]
    if note:
        out.append(
            f'<text x="{width / 2}" y="42" text-anchor="middle" font-size="13" fill="#c8283c" '
            f'font-weight="bold">{escape(note)}</text>'
        )
    for i, p in enumerate(panels):
        out += panel_svg(p, i * panel_width, top, panel_width, panel_height)
    column = width / 3
    for i, (engine, label) in enumerate(legend):
        x = 20 + (i % 3) * column
        y = top + 6 + panel_height + 14 + 22 * (i // 3)
        colour = COLOURS.get(engine, "#000")
        dash = ' stroke-dasharray="6 4"' if engine in DASHED else ""
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 28}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<circle cx="{x + 14}" cy="{y}" r="3.5" fill="{colour}"/>')
        out.append(f'<text x="{x + 36}" y="{y + 4}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def series(records, engine, xkey, ykey):
    pts = [(r["params"][xkey], r.get(ykey)) for r in records if r["engine"] == engine and r.get(ykey) is not None]
    label = next((engine_label(r) for r in records if r["engine"] == engine), engine)
    return {"engine": engine, "label": label, "points": pts}


def plots(records, out_dir, note):
    os.makedirs(out_dir, exist_ok=True)
    written = []

    def write(name, title, panels):
        engines = []
        for p in panels:
            for s in p["series"]:
                if s["points"] and (s["engine"], s["label"]) not in engines:
                    engines.append((s["engine"], s["label"]))
        if not engines:
            return
        path = os.path.join(out_dir, name)
        with open(path, "w") as f:
            f.write(svg(title, panels, engines, note))
        written.append(path)

    pit = records.get("pit", [])
    write(
        "pit.svg",
        "Training-set time against spine rows",
        [
            {
                "title": "lower is better",
                "xlabel": "spine rows",
                "ylabel": "seconds",
                "series": [series(pit, e, "spine_rows", "seconds") for e in ("quiver", "duckdb")],
            }
        ],
    )
    online = records.get("online", []) + records.get("grpc", [])
    engines = ("quiver-grpc", "quiver-store", "redis-get", "feast")
    write(
        "online-latency.svg",
        "Online read latency against batch size (2 views × 3 features)",
        [
            {
                "title": f"{q}",
                "xlabel": "entities per request",
                "ylabel": f"{q} latency, ms",
                "series": [series(online, e, "batch", f"{q}_ms") for e in engines],
            }
            for q in ("p50", "p99")
        ],
    )
    mat = records.get("materialize", [])
    write(
        "materialize.svg",
        "Materialization time against rows",
        [
            {
                "title": "lower is better",
                "xlabel": "driver_stats rows",
                "ylabel": "seconds",
                "series": [series(mat, e, "rows", "seconds") for e in ("quiver", "feast")],
            }
        ],
    )
    return written


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results")
    parser.add_argument("--plots", help="folder to write the SVG plots into")
    args = parser.parse_args()
    records = load(args.results)
    if not records:
        raise SystemExit(f"no records in {args.results}/*.jsonl")
    all_records = [r for rs in records.values() for r in rs]
    profiles = sorted({r.get("profile", "unknown") for r in all_records} - {"release"})
    parts = []
    if profiles:
        parts.append(
            f"**Not all figures come from release binaries (build profile: {', '.join(profiles)}): "
            "these are not benchmark figures.**\n"
        )
    for workload, title, render in SECTIONS:
        rs = records.get(workload)
        if not rs:
            continue
        parts.append(f"### {title}\n\n{render(rs)}\n\n{provenance(rs)}\n")
    print("\n".join(parts), end="")
    if args.plots:
        for path in plots(records, args.plots, "not a release build: not benchmark figures" if profiles else ""):
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
