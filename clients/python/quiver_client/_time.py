"""Times on the wire are nanoseconds since the epoch; here they are datetimes (a naive one
is UTC) or RFC 3339 text, as the CLI takes them."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Optional, Union

from ._errors import InvalidArgument

__all__ = ["TimeLike", "to_ns", "ns_to_datetime", "optional_time"]

TimeLike = Union[datetime, date, str]
"""A time: a ``datetime`` (naive means UTC), a ``date`` (midnight UTC), or text: RFC 3339
(``2026-01-01T12:00:00Z``, up to nanoseconds), a date (``2026-01-01``) or ``now``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?)?"
    r"\s*(Z|z|[+-]\d{2}:\d{2})?"
)


def _datetime_ns(t: datetime) -> int:
    if t.tzinfo is None or t.tzinfo.utcoffset(t) is None:
        t = t.replace(tzinfo=timezone.utc)
    whole = (t - _EPOCH) // timedelta(microseconds=1) * 1000
    # pandas.Timestamp is a datetime with nanoseconds beyond the microsecond.
    return whole + int(getattr(t, "nanosecond", 0))


def _parse(text: str, what: str) -> int:
    text = text.strip()
    if text.lower() == "now":
        return _datetime_ns(datetime.now(timezone.utc))
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise InvalidArgument(
            f"{what}: {text!r} is not a time; use RFC 3339 (2026-01-01T12:00:00Z), a date (2026-01-01) or 'now'"
        )
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    if hour is None and offset is not None:
        raise InvalidArgument(f"{what}: {text!r}: a date alone takes no UTC offset")
    try:
        t = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError as e:
        raise InvalidArgument(f"{what}: {text!r}: {e}") from None
    ns = _datetime_ns(t) + int((fraction or "").ljust(9, "0") or 0)
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        ns -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60) * 1_000_000_000
    return ns


def to_ns(t: TimeLike, what: str = "time") -> int:
    """Nanoseconds since the epoch of ``t``; ``what`` names the argument in errors."""
    if isinstance(t, datetime):
        return _datetime_ns(t)
    if isinstance(t, date):
        return _datetime_ns(datetime(t.year, t.month, t.day))
    if isinstance(t, str):
        return _parse(t, what)
    raise InvalidArgument(f"{what}: expected a datetime, a date or RFC 3339 text, not {type(t).__name__}")


def ns_to_datetime(ns: int) -> datetime:
    """The UTC datetime of nanoseconds since the epoch (to the microsecond: a datetime
    holds no nanoseconds; the Arrow forms of results keep them)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def optional_time(ns: int) -> Optional[datetime]:
    """:func:`ns_to_datetime`, or None for 0 (how the wire says "no time")."""
    return ns_to_datetime(ns) if ns else None
