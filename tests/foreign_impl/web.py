"""A web framework in one page, on the standard library's threaded HTTP server: routes with
`{param}` templates, JSON in and out, and per request the server span, the request counter and
histogram, X-Request-ID and one log line. /health and /metrics are neither traced, counted
nor logged."""

from __future__ import annotations

import json
import re
import time
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import obs

REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,200}$")
UNTRACED = ("/health", "/metrics")
REQUESTS = "foreign_http_requests_total"
DURATION = "foreign_http_request_seconds"
obs.declare(REQUESTS, "counter", "HTTP requests answered, by route template and status code.")
obs.declare(DURATION, "histogram", "Seconds spent answering HTTP requests.")


class HttpError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class Unavailable(Exception):
    """A dependency (postgres, mongodb, nats) did not answer: 503."""


class Request:
    def __init__(self, method: str, path: str, query: str, body: bytes) -> None:
        self.method = method
        self.path = path
        self.query = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        self.body = body

    def json_object(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"null")
        except ValueError:
            raise HttpError(422, {"detail": [{"loc": ["body"], "msg": "not JSON"}]}) from None
        if not isinstance(data, dict):
            raise HttpError(422, {"detail": [{"loc": ["body"], "msg": "must be an object"}]})
        return data


Endpoint = Callable[..., tuple[int, Any]]


class Route:
    def __init__(self, method: str, template: str, endpoint: Endpoint) -> None:
        self.method = method
        self.template = template
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self.regex = re.compile(f"^{pattern}$")
        self.endpoint = endpoint


class Api:
    """What a role provides: its routes, health checks, start-up and shut-down."""

    routes: list[Route]

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> dict[str, str]:
        return {}


def fail(request: Request) -> tuple[int, Any]:
    """The error hook the target declares (capabilities.error_hook): always a 500."""
    raise RuntimeError("failure requested by the error hook")


BUILT_IN = [Route("GET", "/_conformance/fail", fail)]


def route_for(api: Api, method: str, path: str) -> tuple[Route | None, dict[str, str], int]:
    """(route, path parameters, status if no route fits: 404 or 405)."""
    allowed = False
    for route in [*api.routes, *BUILT_IN]:
        match = route.regex.match(path)
        if match:
            if route.method == method:
                return route, match.groupdict(), 0
            allowed = True
    return None, {}, 405 if allowed else 404


def make_handler(api: Api) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "foreign-impl/1"

        def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
            pass  # one JSON line per request is written below instead

        def do_GET(self) -> None:  # stdlib naming
            self.answer()

        def do_POST(self) -> None:  # stdlib naming
            self.answer()

        def do_PUT(self) -> None:  # stdlib naming
            self.answer()

        def do_DELETE(self) -> None:  # stdlib naming
            self.answer()

        def send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def answer(self) -> None:
            started = time.perf_counter()
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if path in UNTRACED and self.command == "GET":
                self.probe(path)
                return
            given = self.headers.get("X-Request-ID")
            request_id = given if given and REQUEST_ID.match(given) else uuid.uuid4().hex
            caller = obs.incoming(
                self.headers.get("traceparent"), self.headers.get_all("tracestate") or []
            )
            route, params, missing = route_for(api, self.command, path)
            template = route.template if route else "unmatched"
            token = obs.request_id.set(request_id)
            try:
                with obs.span(
                    f"{self.command} {template}",
                    obs.SERVER,
                    parent=caller,
                    new_trace=caller is None,
                    attributes={
                        "http.request.method": self.command,
                        "http.route": template,
                        "url.path": path,
                        "server.port": self.server.server_address[1],
                    },
                ) as span:
                    status, payload = self.run(
                        route, params, missing, Request(self.command, path, query, body), span
                    )
                    span.attributes["http.response.status_code"] = status
                    if status >= 500:
                        span.attributes["error.type"] = str(status)
                        span.error = span.error or f"HTTP {status}"
                    elapsed = time.perf_counter() - started
                    labels = {"method": self.command, "route": template, "code": str(status)}
                    obs.inc(REQUESTS, **labels)
                    obs.observe(DURATION, elapsed, **labels)
                    obs.emit(
                        "info" if status < 500 else "error",
                        f"{self.command} {path} -> {status}",
                        http_status=status,
                        http_route=template,
                        duration_ms=round(elapsed * 1000, 2),
                    )
                    self.send_json(status, payload, {"X-Request-ID": request_id})
            finally:
                obs.request_id.reset(token)

        def run(
            self,
            route: Route | None,
            params: dict[str, str],
            missing: int,
            request: Request,
            span: obs.Span,
        ) -> tuple[int, Any]:
            if route is None:
                return missing, {"detail": f"no route {request.method} {request.path}"}
            try:
                return route.endpoint(request, **params)
            except HttpError as error:
                return error.status, error.body
            except Unavailable as error:
                span.error = str(error)
                obs.emit("error", f"{request.method} {request.path} failed: {error}")
                return 503, {"detail": str(error)}
            except Exception as error:  # a 500, logged with its traceback
                span.error = f"{type(error).__name__}: {error}"
                obs.emit(
                    "error",
                    f"{request.method} {request.path} crashed: {error!r}",
                    error=traceback.format_exc(),
                )
                return 500, {"detail": "internal error"}

        def probe(self, path: str) -> None:
            if path == "/metrics":
                data = obs.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            checks = api.health()
            healthy = all(state == "ok" for state in checks.values())
            body = {"status": "ok" if healthy else "unavailable", "checks": checks}
            self.send_json(200 if healthy else 503, body, {})

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
