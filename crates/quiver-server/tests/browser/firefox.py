"""The catalog in headless Firefox, driven through WebDriver BiDi, the W3C protocol Firefox
speaks natively (`--remote-debugging-port`): no driver binary and no patched browser, only
Debian's `firefox-esr` and the `websockets` package. `test_catalog.py` runs `check` against
the server it started for Chromium.

Checks: every page loads and renders its main content with no console error or uncaught
exception; real key presses in the search box filter the catalog; the view page draws its
histograms, freshness and drift scores; at a phone's width no page is wider than the screen;
a screenshot of each page is saved as `firefox-<page>.png` and `firefox-<page>-phone.png`.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import time

from websockets.sync.client import connect

# Preferences for a quiet, offline test profile: no first-run pages, no update or
# telemetry traffic, no remote settings (they only log failures on a machine offline).
PREFS = {
    "app.update.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "services.settings.server": "http://127.0.0.1:9/",
    "network.captive-portal-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "remote.prefs.recommended": True,
}

# The WebDriver key of Backspace.
BACKSPACE = "\ue003"


def firefox_binary():
    return os.environ.get("FIREFOX") or shutil.which("firefox-esr") or shutil.which("firefox")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Firefox:
    """One headless Firefox and one WebDriver BiDi session on its first tab."""

    def __init__(self, binary, root):
        profile = root / "firefox-profile"
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "user.js").write_text(
            "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
        )
        port = free_port()
        self.log = open(root / "firefox.log", "w")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-remote", "--profile", str(profile), "--remote-debugging-port", str(port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.ws = self._connect(f"ws://127.0.0.1:{port}/session")
        self.next_id = 0
        self.events = []
        self.call("session.new", {"capabilities": {}})
        self.call("session.subscribe", {"events": ["log.entryAdded"]})
        self.context = self.call("browsingContext.getTree", {})["contexts"][0]["context"]

    def _connect(self, url):
        deadline = time.time() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"firefox exited with {self.process.returncode} (see {self.log.name})")
            try:
                return connect(url, max_size=None, open_timeout=5)
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"firefox did not listen for WebDriver BiDi within 60 s (see {self.log.name})")
                time.sleep(0.2)

    def call(self, method, params):
        """Sends one command and returns its result; events that arrive meanwhile are kept."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("type") == "event":
                self.events.append(message)
            elif message.get("id") == self.next_id:
                if message.get("type") == "error":
                    raise RuntimeError(f"{method}: {message.get('error')}: {message.get('message')}")
                return message["result"]

    def goto(self, url):
        self.call("browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"})

    def value(self, expression):
        """The JSON value of a page expression (evaluated as `JSON.stringify(expression)`);
        None for undefined."""
        result = self.call(
            "script.evaluate",
            {
                "expression": f"JSON.stringify({expression})",
                "target": {"context": self.context},
                "awaitPromise": True,
            },
        )
        if result["type"] == "exception":
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        value = result["result"]
        # JSON.stringify of undefined (a statement's value) is undefined itself.
        return None if value["type"] == "undefined" else json.loads(value["value"])

    def keys(self, text):
        """Presses and releases each key of `text` in the focused element."""
        actions = []
        for key in text:
            actions += [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        self.call(
            "input.performActions",
            {"context": self.context, "actions": [{"type": "key", "id": "keyboard", "actions": actions}]},
        )

    def screenshot(self, path):
        data = self.call("browsingContext.captureScreenshot", {"context": self.context, "origin": "document"})
        path.write_bytes(base64.b64decode(data["data"]))

    def viewport(self, width, height):
        self.call(
            "browsingContext.setViewport",
            {"context": self.context, "viewport": {"width": width, "height": height}},
        )

    def errors(self):
        """Console errors and uncaught exceptions of the pages, as text."""
        return [
            f"firefox {e['params'].get('type')}: {e['params'].get('text')}"
            for e in self.events
            if e.get("method") == "log.entryAdded" and e["params"].get("level") == "error"
        ]

    def close(self):
        try:
            self.call("browser.close", {})
        except Exception:  # the browser may close the socket before it answers
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


VISIBLE_ROWS = "[...document.querySelectorAll('tr[data-search]')].filter(r => r.offsetParent !== null)"


# Each page and the name of its screenshot.
PAGES = [
    ("/", "catalog"),
    ("/views/driver_stats", "view"),
    ("/services/ride_ranking_v1", "service"),
    ("/lineage", "lineage"),
    ("/history", "history"),
    ("/runs", "runs"),
]


def check(base, root, artifacts):
    """Runs the Firefox checks against the catalog at `base`; returns the problems found."""
    binary = firefox_binary()
    if not binary:
        return ["no firefox on PATH (apt-get install firefox-esr), or set FIREFOX"]
    problems = []
    browser = Firefox(binary, root)
    try:
        browser.viewport(1280, 900)
        for path, shot in PAGES:
            browser.goto(base + path)
            heading = browser.value("document.querySelector('main h1')?.textContent ?? ''")
            if not heading.strip():
                problems.append(f"firefox: {path} has no heading in its main content")
            browser.screenshot(artifacts / f"firefox-{shot}.png")

        # Typing in the search box (real key events) filters the catalog's rows.
        browser.goto(base + "/")
        total = browser.value(f"{VISIBLE_ROWS}.length")
        browser.value("document.getElementById('search').focus()")
        browser.keys("gold")
        kept = browser.value(f"{VISIBLE_ROWS}.map(r => r.dataset.search)")
        if not (0 < len(kept) < total and all("gold" in k for k in kept)):
            problems.append(f"firefox: typing 'gold' kept {len(kept)} of {total} rows: {kept}")
        browser.keys(BACKSPACE * 4)
        if browser.value(f"{VISIBLE_ROWS}.length") != total:
            problems.append("firefox: clearing the search box did not show every row again")

        browser.goto(base + "/views/driver_stats")
        if browser.value("document.querySelectorAll('svg rect.bar').length") == 0:
            problems.append("firefox: the view page draws no histogram")
        text = browser.value("document.querySelector('main').innerText")
        if "newest event" not in text:
            problems.append("firefox: the view page shows no freshness")
        if "PSI" not in text or "Checked " not in text:
            problems.append("firefox: the view page shows no drift scores")

        # A phone's width.
        browser.viewport(390, 844)
        for path, shot in PAGES:
            browser.goto(base + path)
            width = browser.value("document.documentElement.scrollWidth")
            if width > 392:
                problems.append(f"firefox: {path} is {width} px wide on a 390 px screen")
            browser.screenshot(artifacts / f"firefox-{shot}-phone.png")
        problems.extend(browser.errors())
    finally:
        browser.close()
    return problems
