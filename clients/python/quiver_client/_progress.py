"""Progress of a materialization job while it is waited on: a tqdm bar when tqdm is
installed, else a line on stderr whenever the job moves on."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

from ._models import JobStatus

__all__ = ["JobProgress"]

# The plain reporter writes at most one line per this many seconds (and every change of
# state or finished view).
_PLAIN_EVERY = 5.0


def _views_done(status: JobStatus) -> int:
    return sum(1 for v in status.views if v.state in ("SUCCEEDED", "SKIPPED", "FAILED"))


def _summary(status: JobStatus) -> str:
    rows = (
        f"{status.rows_done:,}/{status.rows_expected:,} rows" if status.rows_expected else f"{status.rows_done:,} rows"
    )
    return f"{status.state.lower()}, {_views_done(status)}/{len(status.views)} views, {rows}"


class JobProgress:
    """Shows a job's progress; does nothing when not ``enabled``."""

    def __init__(self, job_id: str, enabled: bool, stream: Optional[TextIO] = None) -> None:
        self._job_id = job_id
        self._enabled = enabled
        self._stream = stream if stream is not None else sys.stderr
        self._bar: Any = None
        self._last_line = ""
        self._last_time = 0.0
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=0, unit="rows", unit_scale=True, desc=f"materialize {job_id}", file=self._stream)

    def update(self, status: JobStatus) -> None:
        """Shows ``status``."""
        if not self._enabled:
            return
        if self._bar is not None:
            self._bar.total = max(status.rows_expected, status.rows_done)
            self._bar.n = status.rows_done
            self._bar.set_postfix_str(f"{status.state.lower()}, {_views_done(status)}/{len(status.views)} views")
            self._bar.refresh()
            return
        key = f"{status.state} {_views_done(status)}"
        now = time.monotonic()
        if key != self._last_line or now - self._last_time >= _PLAIN_EVERY:
            self._last_line, self._last_time = key, now
            print(f"materialization job {self._job_id}: {_summary(status)}", file=self._stream, flush=True)

    def close(self, status: Optional[JobStatus]) -> None:
        """Ends the display, with the final ``status`` when known."""
        if not self._enabled:
            return
        if status is not None:
            self.update(status)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
