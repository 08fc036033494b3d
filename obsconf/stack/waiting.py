"""The one waiting helper: poll with a deadline, and say what was last seen on timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class PollTimeout(AssertionError):
    """A poll ran out of time; the message says what was expected and what was last seen."""


_waiting: list[str] = []  # what the polls in progress wait for, innermost last


def waiting_for() -> str | None:
    """What the innermost poll in progress waits for (None when nothing waits)."""
    return _waiting[-1] if _waiting else None


class StopPolling(Exception):
    """Raised by a polled function when waiting longer is pointless (e.g. the process died);
    it propagates at once instead of counting as "not yet"."""


def poll(
    fn: Callable[[], T],
    until: Callable[[T], bool] = bool,
    timeout: float = 10.0,
    describe: str = "condition",
    interval: float = 0.1,
    max_interval: float = 0.5,
) -> T:
    """Call `fn` until `until(result)` holds; return that result.

    Exceptions raised by `fn` count as "not yet" and are reported if the deadline passes,
    except `StopPolling`, which propagates at once.
    The interval grows from `interval` to `max_interval` so slow backends are not hammered.
    """
    _waiting.append(describe)
    try:
        return _poll(fn, until, timeout, describe, interval, max_interval)
    finally:
        _waiting.pop()


def _poll(
    fn: Callable[[], T],
    until: Callable[[T], bool],
    timeout: float,
    describe: str,
    interval: float,
    max_interval: float,
) -> T:
    deadline = time.monotonic() + timeout
    last: object = "<never called>"
    while True:
        try:
            result = fn()
            if until(result):
                return result
            last = result
        except StopPolling:
            raise
        except Exception as error:  # reported on timeout
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            seen = repr(last)
            if len(seen) > 2000:
                seen = seen[:2000] + "…"
            raise PollTimeout(
                f"timed out after {timeout:.1f}s waiting for {describe}; last seen: {seen}"
            )
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)
