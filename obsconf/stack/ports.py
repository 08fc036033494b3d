"""Free loopback ports, picked at start-up (never assume a fixed port is free)."""

from __future__ import annotations

import socket

_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and not handed out before."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("could not find a free loopback port")


def port_in_use_message(log_tail: str) -> bool:
    """Whether a component's log says it lost a race for its port."""
    lowered = log_tail.lower()
    return "address already in use" in lowered or "bind: address" in lowered
