"""HTTP clients for the backends the suite asserts against: metrics, logs, traces."""

from obsconf.conformance.clients.errors import BackendError, BackendUnreachable

__all__ = ["BackendError", "BackendUnreachable"]
