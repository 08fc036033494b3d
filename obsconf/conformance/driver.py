"""Drives requests at the target like a traced client would, and remembers each call.

Every call sends a fresh W3C `traceparent` (sampled) whose trace id the suite then looks up in
the trace store — the client's own span id is the expected parent of the server span — and an
`X-Request-ID`. Both can be overridden or omitted per call for the propagation cases.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


def new_trace_id() -> str:
    return secrets.token_hex(16)


def new_span_id() -> str:
    return secrets.token_hex(8)


TRACERESPONSE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def trace_of(response_headers: dict[str, str], sent: str | None) -> str | None:
    """The trace a request landed in: the W3C `traceresponse` header when the service sends
    one, else the trace id the suite sent (what a service that continues context uses)."""
    match = TRACERESPONSE.match(response_headers.get("traceresponse", "").strip())
    return match.group(1) if match else sent


@dataclass
class Call:
    """One request the suite made, with what it sent and what came back."""

    role: str
    method: str
    path: str
    route: str  # the route template the path instantiates
    status: int
    trace_id: str | None  # the trace the request landed in (see `trace_of`)
    sent_trace_id: str | None  # the trace id sent in traceparent (None if none was sent)
    client_span_id: str | None
    request_id: str | None
    sent_headers: dict[str, str]  # the last field of each name
    response_headers: dict[str, str]
    body: Any
    started: float  # epoch seconds
    ended: float
    sent_fields: tuple[tuple[str, str], ...] = ()  # every header field sent, in order

    def describe(self) -> str:
        return f"{self.method} {self.path} -> {self.status} (trace {self.trace_id})"


@dataclass
class Driver:
    urls: dict[str, str]  # role -> base URL
    timeout: float = 10.0
    calls: list[Call] = field(default_factory=list)
    journal: list[Call] | None = None  # the run's record of every call (System.journal)

    def __post_init__(self) -> None:
        self._http = httpx.Client(timeout=self.timeout)

    def call(
        self,
        role: str,
        method: str,
        path: str,
        route: str | None = None,
        json: Any = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        traced: bool = True,
        request_id: str | None = "auto",
        content: bytes | None = None,
    ) -> Call:
        """Send one request; `route` defaults to `path` (for paths without parameters).
        `content` is a raw body sent as JSON (what `json=` cannot encode: NaN, lone surrogates).

        `headers` replace the driver's own of the same name; given as (name, value) pairs,
        a name may repeat (each pair is one header field: two `traceparent` fields)."""
        sent: dict[str, str] = {}
        trace_id = span_id = None
        if traced:
            trace_id, span_id = new_trace_id(), new_span_id()
            sent["traceparent"] = f"00-{trace_id}-{span_id}-01"
        if request_id == "auto":
            request_id = f"obsconf-{secrets.token_hex(6)}"
        if request_id:
            sent["X-Request-ID"] = request_id
        given = list(headers.items() if isinstance(headers, Mapping) else headers or ())
        names = {name.lower() for name, _ in given}
        if content is not None and "content-type" not in names:
            given.append(("Content-Type", "application/json"))
            names.add("content-type")
        fields = [(k, v) for k, v in sent.items() if k.lower() not in names] + given
        sent = dict(fields)  # the record keeps the last field of a repeated name
        started = time.time()
        response = self._http.request(
            method, self.urls[role] + path, json=json, content=content, headers=fields
        )
        ended = time.time()
        try:
            body = response.json()
        except ValueError:
            body = response.text
        headers_seen = {k.lower(): v for k, v in response.headers.items()}
        call = Call(
            trace_id=trace_of(headers_seen, trace_id),
            sent_trace_id=trace_id,
            role=role,
            method=method,
            path=path,
            route=route or path,
            status=response.status_code,
            client_span_id=span_id,
            request_id=request_id,
            sent_headers=sent,
            sent_fields=tuple(fields),
            response_headers=headers_seen,
            body=body,
            started=started,
            ended=ended,
        )
        self.calls.append(call)
        if self.journal is not None:
            self.journal.append(call)
        return call

    def close(self) -> None:
        self._http.close()
