"""HTTP clients for the backends the suite asserts against: metrics, logs, traces."""

from conformance.clients.errors import BackendError, BackendUnreachable

__all__ = ["BackendError", "BackendUnreachable"]
