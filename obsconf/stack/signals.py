"""Turn SIGTERM (and SIGHUP) into an ordinary exception so `finally`/`with` cleanup runs."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # a CI cancel; a closed terminal or SSH


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM or SIGHUP arrives."""


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


def install_termination_handlers() -> None:
    for sig in STOPPING_SIGNALS:
        signal.signal(sig, _raise)


def interrupt_on_stop() -> Callable[[], None]:
    """From now on SIGTERM and SIGHUP stop like Ctrl-C (KeyboardInterrupt: pytest tears the
    session down and writes its results); returns the function that restores the handlers.
    Outside the main thread signals cannot be handled: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, signal.default_int_handler) for sig in STOPPING_SIGNALS}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
