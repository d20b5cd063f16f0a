"""Handles on materialization jobs: they run on the server in the background; ``wait``
polls their status (retried after UNAVAILABLE, as every read is) until they finish."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Optional

from ._errors import DeadlineExceeded, JobFailed
from ._models import JobStatus
from ._progress import JobProgress

__all__ = ["MaterializationJob", "AsyncMaterializationJob"]


def _failure(status: JobStatus) -> JobFailed:
    reasons = [status.error] if status.error else []
    reasons += [f"{v.view}: {v.message}" for v in status.views if v.state == "FAILED"]
    return JobFailed(f"materialization job {status.id} failed: {'; '.join(reasons) or 'no reason given'}", status)


def _check_deadline(status: JobStatus, deadline: Optional[float]) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded(f"materialization job {status.id} is still {status.state.lower()}")


def _finish(status: JobStatus, raise_on_failure: bool) -> JobStatus:
    if raise_on_failure and status.state == "FAILED":
        raise _failure(status)
    return status


class MaterializationJob:
    """A materialization job started by :meth:`quiver_client.Client.materialize`.

    Attributes:
        id: the job's id (``Client.get_materialization(id)`` finds it again).
        status: its status as last seen.
    """

    def __init__(self, status: JobStatus, get: Callable[[str], JobStatus]) -> None:
        self.id: str = status.id
        self.status: JobStatus = status
        self._get = get

    def __repr__(self) -> str:
        return f"MaterializationJob(id={self.id!r}, state={self.status.state!r})"

    def refresh(self) -> JobStatus:
        """Asks the server for the job's status now."""
        self.status = self._get(self.id)
        return self.status

    def wait(
        self,
        progress: bool = False,
        *,
        poll_interval: float = 0.5,
        timeout: Optional[float] = None,
        raise_on_failure: bool = True,
    ) -> JobStatus:
        """Waits until the job finishes and returns its final status.

        Args:
            progress: show progress (a tqdm bar when tqdm is installed, else lines on stderr).
            poll_interval: seconds between status requests.
            timeout: give up after this many seconds (DeadlineExceeded; the job goes on).
            raise_on_failure: raise :class:`quiver_client.JobFailed` when the job failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        display = JobProgress(self.id, progress)
        try:
            status = self.status
            while not status.done:
                display.update(status)
                _check_deadline(status, deadline)
                time.sleep(poll_interval)
                status = self.refresh()
        finally:
            display.close(self.status)
        return _finish(status, raise_on_failure)


class AsyncMaterializationJob:
    """The asyncio form of :class:`MaterializationJob`."""

    def __init__(self, status: JobStatus, get: Callable[[str], Awaitable[JobStatus]]) -> None:
        self.id: str = status.id
        self.status: JobStatus = status
        self._get = get

    def __repr__(self) -> str:
        return f"AsyncMaterializationJob(id={self.id!r}, state={self.status.state!r})"

    async def refresh(self) -> JobStatus:
        """Asks the server for the job's status now."""
        self.status = await self._get(self.id)
        return self.status

    async def wait(
        self,
        progress: bool = False,
        *,
        poll_interval: float = 0.5,
        timeout: Optional[float] = None,
        raise_on_failure: bool = True,
    ) -> JobStatus:
        """Waits until the job finishes; see :meth:`MaterializationJob.wait`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        display = JobProgress(self.id, progress)
        try:
            status = self.status
            while not status.done:
                display.update(status)
                _check_deadline(status, deadline)
                await asyncio.sleep(poll_interval)
                status = await self.refresh()
        finally:
            display.close(self.status)
        return _finish(status, raise_on_failure)
