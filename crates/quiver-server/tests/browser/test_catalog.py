"""The web catalog in real browsers: headless Chromium (the system's, driven by Playwright
for Python), then headless Firefox (the system's, through WebDriver BiDi: firefox.py),
against `quiver serve --http-addr` on a quickstart project.

Run with `crates/quiver-server/tests/browser/run.sh` (it makes a virtual environment with
Playwright, and needs `chromium` on PATH). Environment:

- QUIVER_BIN: the quiver binary (default: target/debug/quiver under CARGO_TARGET_DIR);
- CHROMIUM: the browser (default: `chromium` on PATH);
- FIREFOX: the other browser (default: `firefox-esr` or `firefox` on PATH);
- ARTIFACTS: where screenshots go (default: a temporary folder, printed).

Checks: the catalog lists the example project's objects; typing in the search box filters
them; a view page shows its features with their descriptions, freshness and runs after a
materialization, and the scores of the server's declared drift check; the
lineage graph links a source to its views and services; the history page shows the diff of
a change applied in the test; every href answers 200; no console error on any page; a
screenshot of each page, at a desktop's and at a phone's width, is saved. In Firefox: see
firefox.py.
"""

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from playwright.sync_api import sync_playwright

import firefox

PAGES = ["/", "/views/driver_stats", "/services/ride_ranking_v1", "/lineage", "/history", "/runs"]
# The screenshot of each page: `<shot>.png`, and `<shot>-phone.png` at a phone's width.
SHOTS = ["catalog", "view", "service", "lineage", "history", "runs"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quiver_bin():
    if os.environ.get("QUIVER_BIN"):
        return os.environ["QUIVER_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(pathlib.Path(__file__).resolve().parents[4] / "target"))
    return str(pathlib.Path(target) / "debug" / "quiver")


def run(args, cwd):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def make_project(quiver, root):
    """A quickstart project (materialized), then a second registry version changing one description."""
    project = root / "project"
    run([quiver, "quickstart", "--dir", str(project), "--rows", "2000"], cwd=root)
    views = project / "feature_defs" / "rides" / "views.yaml"
    text = views.read_text()
    old = "Recent conversion, acceptance and trip volume of each driver."
    assert old in text, "the example's driver_stats description changed; update this test"
    views.write_text(text.replace(old, "Conversion, acceptance and trips of each driver, refreshed hourly."))
    run([quiver, "apply", "--config", str(project / "quiver.yaml")], cwd=project)
    # A second, newer window of driver_stats: the server's declared drift check compares it
    # with the window of the same length before it, which the quickstart materialized.
    run([quiver, "materialize", "--start", "2026-01-04", "--end", "2026-01-08", "--views", "driver_stats"], cwd=project)
    return project


def start_server(quiver, project):
    """`quiver serve` on free loopback ports in `project`: the process and the HTTP base URL.
    Its log goes to `server.log` beside the project, not to a pipe that nobody reads while
    the server runs (a full pipe would block it)."""
    grpc, http = free_port(), free_port()
    log_path = project.parent / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                quiver,
                "serve",
                "--addr",
                f"127.0.0.1:{grpc}",
                "--http-addr",
                f"127.0.0.1:{http}",
                "--check-drift-every",
                "1s",
            ],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    server.log_path = log_path
    return server, f"http://127.0.0.1:{http}"


def server_log(server):
    """What a server started by `start_server` has logged."""
    return server.log_path.read_text()


def wait_for(url, server):
    deadline = time.time() + 60
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit(f"quiver serve exited: {server_log(server)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url} did not answer within 60 s")


def wait_for_text(url, text, server):
    """Polls `url` until its body holds `text` (a background job's result), for up to 60 s."""
    deadline = time.time() + 60
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit(f"quiver serve exited: {server_log(server)}")
        with urllib.request.urlopen(url, timeout=5) as r:
            if text in r.read().decode():
                return
        time.sleep(0.2)
    sys.exit(f"{url} did not show {text!r} within 60 s")


def main():
    quiver = quiver_bin()
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("no chromium on PATH (apt-get install chromium), or set CHROMIUM")
    root = pathlib.Path(tempfile.mkdtemp(prefix="quiver-browser-"))
    artifacts = pathlib.Path(os.environ.get("ARTIFACTS") or root / "screenshots")
    artifacts.mkdir(parents=True, exist_ok=True)
    project = make_project(quiver, root)
    server, base = start_server(quiver, project)
    problems = []
    try:
        wait_for(base + "/healthz", server)
        # The first declared drift check runs a second after the start.
        wait_for_text(base + "/views/driver_stats", "<th>PSI</th>", server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            console = []
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"page error: {e}"))

            def visit(path, shot):
                response = page.goto(base + path)
                assert response is not None and response.status == 200, f"{path}: {response and response.status}"
                page.screenshot(path=str(artifacts / f"{shot}.png"), full_page=True)

            # The catalog lists every object, and the search box filters as you type.
            visit("/", "catalog")
            for name in ["driver_stats", "customer_profile", "ride_ranking_v1", "driver_stats_src", "driver"]:
                assert page.get_by_text(name, exact=True).first.is_visible(), f"{name} not listed"
            rows = page.locator("tr[data-search]")
            total = rows.count()
            page.fill("#search", "gold")
            visible = [r.get_attribute("data-search") for r in rows.all() if r.is_visible()]
            assert 0 < len(visible) < total, f"search 'gold' kept {len(visible)} of {total} rows"
            assert all("gold" in v for v in visible), visible
            assert page.locator("a[href='/views/driver_stats']").is_visible(), "the gold view is hidden"
            page.fill("#search", "pricing-team conv_rate")
            assert page.locator("a[href='/views/driver_stats']").is_visible()
            # A word found only in one feature's description finds that feature's view alone.
            page.fill("#search", "accepted")
            visible = [r.get_attribute("data-search") for r in rows.all() if r.is_visible()]
            assert len(visible) == 1 and visible[0].startswith("driver_stats "), visible
            page.fill("#search", "no-such-thing-anywhere")
            assert not any(r.is_visible() for r in rows.all()), "a search matching nothing hides every row"
            page.fill("#search", "")
            assert sum(1 for r in rows.all() if r.is_visible()) == total

            # A view page: features, freshness after the quickstart's materialization, runs.
            visit("/views/driver_stats", "view")
            body = page.inner_text("main")
            for text in ["conv_rate", "acc_rate", "avg_daily_trips", "newest event", "Materialization runs", "succeeded"]:
                assert text in body, f"{text!r} not on the view page"
            assert page.locator("svg rect.bar").count() > 0, "no histogram drawn"
            # Each feature's description, and the declared drift check's scores per feature.
            assert "Share of ride offers the driver accepted" in body, "no feature description"
            assert "Drift" in body and "Checked " in body, "no drift scores on the view page"
            drift = page.locator("table", has=page.locator("th", has_text="PSI"))
            assert drift.locator("tbody tr").count() == 3, drift.inner_text()

            visit("/services/ride_ranking_v1", "service")
            assert "current_balance" in page.inner_text("main")

            # Lineage: a source links to its view, the view to its services; nodes are links.
            visit("/lineage", "lineage")
            assert page.locator("a.node[href='/#source-driver_stats_src']").count() == 1
            assert page.locator("a.node[href='/services/ride_ranking_v1']").count() == 1
            assert page.locator("path.edge").count() >= 2
            page.locator("a.node[href='/views/driver_stats']").click()
            page.wait_for_url(base + "/views/driver_stats")

            # History: the change applied above, field by field.
            visit("/history", "history")
            history = page.inner_text("main")
            assert "Version 2" in history and "Version 1" in history, history[:500]
            assert "refreshed hourly" in history and "description:" in history, history[:2000]

            visit("/runs", "runs")
            assert "driver_stats" in page.inner_text("main")

            # Every link on every page answers 200.
            links = set()
            for path in PAGES:
                page.goto(base + path)
                links.update(page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"))
            for href in sorted(links):
                target = href.split("#")[0] or "/"
                status = page.request.get(base + target).status
                if status != 200:
                    problems.append(f"{href} answers {status}")

            # A phone's width: nothing wider than the screen but the scrolling tables and graph.
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            for path, shot in zip(PAGES, SHOTS):
                phone.goto(base + path)
                width = phone.evaluate("document.documentElement.scrollWidth")
                if width > 392:
                    problems.append(f"{path} is {width} px wide on a 390 px screen")
                phone.screenshot(path=str(artifacts / f"{shot}-phone.png"), full_page=True)
            browser.close()
            problems.extend(console)
        # The same server in Firefox.
        problems.extend(firefox.check(base, root, artifacts))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"screenshots: {artifacts}")
    if problems:
        sys.exit("catalog problems:\n" + "\n".join(problems))
    print("catalog browser test: ok")


if __name__ == "__main__":
    main()
