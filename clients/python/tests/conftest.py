"""Real servers for the client tests: a redis-server and a `quiver serve` per project, each
project a copy of the example definitions over a generated sample lake.

The quiver binary is $QUIVER_BIN (default /var/tmp/quiver-target/debug/quiver).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import pytest

from quiver_client import Client

REPO = Path(__file__).resolve().parents[3]
DEFINITIONS = REPO / "feature_defs" / "rides"
QUIVER_BIN = os.environ.get("QUIVER_BIN", "/var/tmp/quiver-target/debug/quiver")

# The sample lake covers 2026-01-01 .. 2026-01-07 (UTC).
LAKE_START, LAKE_END = "2026-01-01", "2026-01-08"

# Tokens of the server with auth on: name -> (role, token).
TOKENS: Dict[str, tuple] = {
    "ops": ("admin", "admin-token-for-tests"),
    "pipeline": ("writer", "writer-token-for-tests"),
    "ranking_svc": ("reader", "reader-token-for-tests"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds}s:\n{log.read_text()}")


def stop(proc: Optional[subprocess.Popen]) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Redis:
    """One redis-server on a free port, with nothing saved to disk."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.log = folder / "redis.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not on the PATH (Debian: apt-get install redis-server)")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.proc, self.log)

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


class QuiverProject:
    """A project folder (definitions, sample lake, registry, offline store) with its own
    Redis, and its `quiver serve` on a fixed free port that survives restarts."""

    def __init__(
        self,
        root: Path,
        *,
        tokens: bool = False,
        serve_args: Sequence[str] = (),
    ) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.redis = Redis(root)
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.serve_args = list(serve_args)
        self.serve_log = root / "serve.log"
        self.proc: Optional[subprocess.Popen] = None
        self._write_project(tokens)

    def _write_project(self, tokens: bool) -> None:
        shutil.copytree(DEFINITIONS, self.root / "feature_defs" / "rides")
        config = [
            "project: rides",
            "definitions: feature_defs/rides",
            "registry: .quiver/registry",
            "lake: lake",
            "offline_store: .quiver/offline",
            f"online_store: {{type: redis, url: 'redis://127.0.0.1:{self.redis.port}/0'}}",
        ]
        if tokens:
            config += ["server:", "  reads_need_token: true", "  tokens:"]
            for name, (role, token) in TOKENS.items():
                digest = hashlib.sha256(token.encode()).hexdigest()
                config.append(f"    - {{name: {name}, role: {role}, sha256: {digest}}}")
        (self.root / "quiver.yaml").write_text("\n".join(config) + "\n")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Runs the quiver CLI in the project folder; raises with its output on failure."""
        done = subprocess.run([QUIVER_BIN, *args], cwd=self.root, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"quiver {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def prepare(self, *, apply: bool = True, materialize: bool = True) -> "QuiverProject":
        self.redis.start()
        self.cli("sample-lake", "--dir", "lake", "--rows", "5000")
        if apply:
            self.cli("apply")
        if apply and materialize:
            self.cli("materialize", "--start", LAKE_START, "--end", LAKE_END)
        return self

    def start(self) -> "QuiverProject":
        env = dict(os.environ, QUIVER_AUTH_TOKEN="")
        with self.serve_log.open("ab") as out:
            self.proc = subprocess.Popen(
                [QUIVER_BIN, "serve", "--addr", self.addr, *self.serve_args],
                cwd=self.root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.proc, self.serve_log)
        return self

    def stop(self) -> None:
        """Stops `quiver serve` with SIGTERM (it drains calls in flight) and waits."""
        stop(self.proc)
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.redis.stop()


@pytest.fixture(scope="session", autouse=True)
def quiver_bin() -> str:
    if not os.access(QUIVER_BIN, os.X_OK):
        pytest.exit(f"no quiver binary at {QUIVER_BIN}; build it or set QUIVER_BIN", returncode=2)
    return QUIVER_BIN


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuiverProject]:
    """The shared server: applied and materialized, no tokens. Its online reads are limited
    to 1000 values so that a larger read is RESOURCE_EXHAUSTED."""
    p = QuiverProject(tmp_path_factory.mktemp("main"), serve_args=["--max-online-values", "1000"])
    try:
        yield p.prepare().start()
    finally:
        p.close()


@pytest.fixture(scope="session")
def auth_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuiverProject]:
    """A server with tokens (admin, writer, reader) where reads need a token."""
    p = QuiverProject(tmp_path_factory.mktemp("auth"), tokens=True)
    try:
        yield p.prepare(materialize=False).start()
    finally:
        p.close()


@pytest.fixture
def new_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., QuiverProject]]:
    """Makes servers of this test's own (to stop, restart, or leave unapplied)."""
    made: List[QuiverProject] = []

    def make(*, apply: bool = True, materialize: bool = False, serve_args: Sequence[str] = ()) -> QuiverProject:
        p = QuiverProject(tmp_path_factory.mktemp("own"), serve_args=serve_args)
        made.append(p)
        return p.prepare(apply=apply, materialize=materialize).start()

    try:
        yield make
    finally:
        for p in made:
            p.close()


@pytest.fixture
def client(project: QuiverProject) -> Iterator[Client]:
    with Client(project.addr, timeout=30) as c:
        yield c


def token(name: str) -> str:
    """The token text of one of TOKENS."""
    return str(TOKENS[name][1])
