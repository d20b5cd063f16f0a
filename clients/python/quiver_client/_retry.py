"""Retries of idempotent calls: UNAVAILABLE is retried with exponential backoff and full
jitter until the call's deadline; every other error, and any error of a write, is raised at
once."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional, TypeVar

from ._errors import DeadlineExceeded, Unavailable

__all__ = ["RetryPolicy"]

T = TypeVar("T")

log = logging.getLogger("quiver_client")

# A retry is not started when less than this would be left of the deadline for it.
_MIN_ATTEMPT_SECONDS = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent reads are retried after UNAVAILABLE.

    The n-th pause (from 0) is uniformly random in ``[0, min(max_backoff,
    initial_backoff * multiplier ** n)]`` seconds ("full jitter"). Retries stop when the
    call's timeout would pass (the last pause is shortened to leave time for a last attempt),
    or after ``max_attempts`` attempts; the last UNAVAILABLE error is raised then.
    ``RetryPolicy(max_attempts=1)`` turns retries off.

    Attributes:
        initial_backoff: the cap of the first pause, in seconds.
        max_backoff: the largest cap of any pause, in seconds.
        multiplier: how much the cap grows per retry.
        max_attempts: most attempts of one call, the first included (None: no limit but
            the call's timeout).
    """

    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    max_attempts: Optional[int] = None

    def pause(self, retry: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """The pause before retry number ``retry`` (0 for the first)."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier**retry)
        return rng(0.0, cap)


class _Attempts:
    """Deadline and retry bookkeeping shared by the sync and asyncio loops."""

    def __init__(self, what: str, timeout: float, policy: RetryPolicy) -> None:
        self.what = what
        self.deadline = time.monotonic() + timeout
        self.policy = policy
        self.retries = 0
        self.last: Optional[Unavailable] = None

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(f"{self.what}: the call's timeout passed before it could be sent")
        return left

    def next_pause(self, error: Unavailable) -> float:
        """The pause before the next attempt, or raises ``error`` when no attempt fits
        before the deadline any more. A pause that would end too late is shortened, so the
        last attempt is made just before the deadline."""
        self.last = error
        limit = self.policy.max_attempts
        if limit is not None and self.retries + 1 >= limit:
            raise error
        latest = self.deadline - _MIN_ATTEMPT_SECONDS - time.monotonic()
        if latest <= 0:
            raise error
        pause = min(self.policy.pause(self.retries), latest)
        self.retries += 1
        log.info(
            "retrying %s after UNAVAILABLE (retry %d, in %.3fs): %s",
            self.what,
            self.retries,
            pause,
            error.message,
        )
        return pause

    def timed_out(self, error: DeadlineExceeded) -> DeadlineExceeded:
        """``error``, saying why earlier attempts failed when the call was retried."""
        if self.last is None:
            return error
        return DeadlineExceeded(f"{error.message} (after {self.retries} retries; the last failed attempt: {self.last})")


def call(what: str, attempt: Callable[[float], T], *, timeout: float, idempotent: bool, policy: RetryPolicy) -> T:
    """Runs ``attempt(seconds_left)``; retries an idempotent one that raised Unavailable."""
    attempts = _Attempts(what, timeout, policy)
    while True:
        try:
            return attempt(attempts.remaining())
        except Unavailable as e:
            if not idempotent:
                raise
            time.sleep(attempts.next_pause(e))
        except DeadlineExceeded as e:
            raise attempts.timed_out(e) from None


async def call_async(
    what: str,
    attempt: Callable[[float], Awaitable[T]],
    *,
    timeout: float,
    idempotent: bool,
    policy: RetryPolicy,
) -> T:
    """The asyncio form of :func:`call`."""
    attempts = _Attempts(what, timeout, policy)
    while True:
        try:
            return await attempt(attempts.remaining())
        except Unavailable as e:
            if not idempotent:
                raise
            await asyncio.sleep(attempts.next_pause(e))
        except DeadlineExceeded as e:
            raise attempts.timed_out(e) from None
