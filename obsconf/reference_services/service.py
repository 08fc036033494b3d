"""What every reference service shares: /health, /metrics, middleware, 503 handling, startup."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from obsconf.reference_services import faults, validation
from obsconf.reference_services.config import Settings
from obsconf.reference_services.errors import DependencyDown
from obsconf.reference_services.telemetry.http_middleware import (
    HttpMetricsMiddleware,
    RequestIdMiddleware,
)
from obsconf.reference_services.telemetry.json_logs import setup_logging
from obsconf.reference_services.telemetry.messaging import set_consumer_relation
from obsconf.reference_services.telemetry.metrics import exposition
from obsconf.reference_services.telemetry.tracing import (
    instrument_app,
    setup_tracing,
    shutdown_tracing,
)

HEALTH_CHECK_TIMEOUT = 1.5

log = logging.getLogger("obsconf.reference_services.service")

HealthCheck = Callable[[], Awaitable[object]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


async def _check(check: HealthCheck) -> str:
    try:
        with suppress_instrumentation():  # probes produce no spans
            async with asyncio.timeout(HEALTH_CHECK_TIMEOUT):
                result = await check()
    except Exception as error:  # reported, not raised
        return f"down: {type(error).__name__}"  # no driver text: it names hosts and ports
    return "ok" if result is not False else "down"


def create_service_app(
    service: str, lifespan: Lifespan, health_checks: Callable[[FastAPI], Mapping[str, HealthCheck]]
) -> FastAPI:
    """A FastAPI app with the shared endpoints and middleware; routes are added by the caller."""
    app = FastAPI(title=service, lifespan=lifespan)
    app.add_middleware(UnhandledErrorMiddleware)  # innermost: metrics count its 500
    app.add_middleware(HttpMetricsMiddleware, service=service)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/health")
    async def health() -> JSONResponse:
        checks = health_checks(app)
        results = await asyncio.gather(*(_check(check) for check in checks.values()))
        dependencies = dict(zip(checks, results, strict=True))
        healthy = all(status == "ok" for status in dependencies.values())
        body = {
            "status": "ok" if healthy else "unavailable",
            "service": service,
            "dependencies": dependencies,
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/fail")
    async def fail() -> None:
        """Conformance hook (target capability `error_hook`): always answers 5xx."""
        raise DependencyDown("error-hook", RuntimeError("failure requested by /api/fail"))

    @app.exception_handler(DependencyDown)
    async def dependency_down(request: Request, error: DependencyDown) -> JSONResponse:
        span = trace.get_current_span()
        if faults.enabled("no-error-status"):
            span.set_status(Status(StatusCode.OK))  # OK is final: the 503 cannot mark it ERROR
        else:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        log.error(
            "%s %s failed: %s",
            request.method,
            request.url.path,
            error,
            extra={"dependency": error.dependency},
        )
        return JSONResponse(
            {"detail": f"{error.dependency} unavailable", "dependency": error.dependency},
            status_code=500 if faults.enabled("outage-500") else 503,
        )

    validation.install(app)
    return app


class UnhandledErrorMiddleware:
    """An exception no handler took becomes a 500 logged at ERROR inside the request's span
    (so the line carries its trace_id), instead of a traceback the server logs after the span
    has ended."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as error:
            span = trace.get_current_span()
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            log.error(
                "%s %s failed: unhandled %s",
                scope["method"],
                scope["path"],
                type(error).__name__,
                exc_info=error,
            )
            if started:
                raise
            await JSONResponse({"detail": "internal error"}, status_code=500)(scope, receive, send)


TRACEPARENT = re.compile(rb"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
TRACE_HEADERS = (b"traceparent", b"tracestate")


def with_trace_header_faults(app: ASGIApp) -> ASGIApp:
    """Wrap the app (outside the tracing middleware) for the two incoming-context faults:
    `ignore-incoming-context` strips traceparent/tracestate, `strict-traceparent` answers 400
    to a malformed traceparent. Without them the app is returned unchanged."""
    ignore = faults.enabled("ignore-incoming-context")
    strict = faults.enabled("strict-traceparent")
    if not (ignore or strict):
        return app

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            if strict:
                given = [v for k, v in headers if k == b"traceparent"]
                if given and not TRACEPARENT.match(given[0].strip()):
                    await JSONResponse({"detail": "malformed traceparent"}, 400)(
                        scope, receive, send
                    )
                    return
            if ignore:
                scope = {**scope, "headers": [(k, v) for k, v in headers if k not in TRACE_HEADERS]}
        await app(scope, receive, send)

    return wrapped


def with_clean_context(app: ASGIApp) -> ASGIApp:
    """Run every request from an empty OpenTelemetry context.

    asyncio copies the current context into every reader callback it registers: when a request
    resumes reading its connection (a body beyond uvicorn's 64 KiB high-water mark), the
    connection's later callbacks - and the tasks of the later requests on it - inherit that
    request's span. The instrumentation then makes the next request's span an INTERNAL child
    of the old one and ignores its traceparent: two flows merged into one trace. The
    `inherit-connection-context` fault leaves the inherited context in place."""
    if faults.enabled("inherit-connection-context"):
        return app

    async def isolated(scope: Scope, receive: Receive, send: Send) -> None:
        token = otel_context.attach(otel_context.Context())
        try:
            await app(scope, receive, send)
        finally:
            otel_context.detach(token)

    return isolated


def run_service(service: str, default_port: int, create_app: Callable[[Settings], FastAPI]) -> None:
    """Entry point of `python -m reference_services.<name>`: configure, serve, flush on exit."""
    settings = Settings.from_env(default_port)
    try:
        faults.configure(settings.faults)
    except faults.UnknownFault as error:
        print(f"{service}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        set_consumer_relation(settings.consumer_relation)
    except ValueError as error:
        print(f"{service}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if settings.logs not in ("file", "otlp") or (
        settings.logs == "otlp" and not settings.otlp_logs_endpoint
    ):
        print(
            f"{service}: OBSCONF_LOGS must be file or otlp (otlp needs "
            f"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT), got {settings.logs!r}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    setup_logging(service, ship=settings.logs, otlp_logs_endpoint=settings.otlp_logs_endpoint)
    setup_tracing(service, settings.otlp_endpoint, enabled=settings.telemetry)
    app = create_app(settings)
    instrument_app(app)
    log.info(
        "starting on %s:%d",
        settings.host,
        settings.port,
        extra={
            "faults": sorted(faults.active()),
            "telemetry": settings.telemetry,
            "consumer_relation": settings.consumer_relation,
        },
    )
    try:
        uvicorn.run(
            with_clean_context(with_trace_header_faults(app)),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=3,
        )
    finally:
        logging.shutdown()  # flushes OTLP log records
        shutdown_tracing()
