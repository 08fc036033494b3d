"""Turn SIGTERM (and SIGHUP) into an ordinary exception so `finally`/`with` cleanup runs."""

from __future__ import annotations

import signal
from types import FrameType


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM or SIGHUP arrives."""


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


def install_termination_handlers() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise)
