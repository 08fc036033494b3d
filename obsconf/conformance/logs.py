"""Log checks' building blocks: the lines a request or a flow wrote, by time window."""

from __future__ import annotations

import contextlib
from datetime import datetime

from obsconf.conformance.clients.logs import LogLine
from obsconf.conformance.driver import Call
from obsconf.conformance.system import System
from obsconf.stack.waiting import PollTimeout, poll

REQUIRED_KEYS = ("ts", "level", "msg", "service")
SLACK_S = 0.05  # clock slack between the service's `ts` and the suite's call timestamps


def line_time(line: LogLine) -> float:
    """The service's own timestamp (`ts`) when the line is JSON with one, else the store's."""
    stamp = line.get("ts")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return line.time


def lines_between(
    system: System, service: str, since: float, until: float, timeout: float = 10.0
) -> list[LogLine]:
    """The lines `service` wrote in [since, until] (epoch s).

    The log store makes lines searchable about a second after they arrive, so this polls
    until the window holds lines and two reads in a row agree (or the deadline passes)."""

    def read() -> list[LogLine]:
        fetched = system.logs.lines(service, since=since - 5, until=until + 5)
        return [ln for ln in fetched if since - SLACK_S <= line_time(ln) <= until + SLACK_S]

    seen: list[list[LogLine]] = []

    def settled() -> bool:
        seen.append(read())
        return len(seen) >= 2 and bool(seen[-1]) and len(seen[-1]) == len(seen[-2])

    with contextlib.suppress(PollTimeout):  # the callers report what (little) was found
        poll(
            settled,
            timeout=timeout,
            describe=f"{service} lines in the log store",
            interval=0.3,
            max_interval=0.5,
        )
    return seen[-1] if seen else []


def request_lines(system: System, call: Call) -> list[LogLine]:
    """The lines the called service wrote while the request was in flight."""
    return lines_between(system, system.names[call.role], call.started, call.ended)


def describe_lines(lines: list[LogLine], limit: int = 8) -> str:
    shown = "\n".join(f"    {ln.raw[:300]}" for ln in lines[:limit])
    more = f"\n    … {len(lines) - limit} more" if len(lines) > limit else ""
    return shown + more
