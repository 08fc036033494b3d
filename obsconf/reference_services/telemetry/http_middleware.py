"""ASGI middleware: X-Request-ID handling, one log line per request, HTTP metrics.

Both run inside the OpenTelemetry server span (the FastAPI instrumentation is outermost), so
their log lines carry the request's trace and span ids. `/health` and `/metrics` are neither
counted nor logged: probes and scrapes would otherwise change the counts tests assert on.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obsconf.reference_services import faults
from obsconf.reference_services.telemetry.json_logs import request_id_var
from obsconf.reference_services.telemetry.metrics import record_request
from obsconf.reference_services.telemetry.tracing import mark_client_error

UNCOUNTED_PATHS = frozenset({"/health", "/metrics"})
REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, bounded

log = logging.getLogger("reference_services.http")


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def route_template(scope: Scope) -> str:
    """The matched route's template (`/api/users/{id}`), or `unmatched`."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestIdMiddleware:
    """Accept or generate X-Request-ID, echo it, log one line per request with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        echo = not faults.enabled("no-request-id")
        incoming = _header(scope, REQUEST_ID_HEADER)
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        token = request_id_var.set(request_id if echo else "")
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if echo:
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s -> %s",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "http_method": scope["method"],
                    "http_path": scope["path"],
                    "http_route": route_template(scope),
                    "http_status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id_var.reset(token)


class HttpMetricsMiddleware:
    """Count and time each request by method, route template and status."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_capturing_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                mark_client_error(status)  # before the instrumentation ends the span
            await send(message)

        try:
            await self.app(scope, receive, send_capturing_status)
        finally:
            if not (status >= 400 and faults.enabled("no-count-errors")):
                endpoint = (
                    scope["path"] if faults.enabled("raw-path-label") else route_template(scope)
                )
                elapsed = time.perf_counter() - started
                record_request(self.service, scope["method"], endpoint, status, elapsed)
