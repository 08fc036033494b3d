"""Hand-made telemetry: JSON log lines, Prometheus text, W3C trace context and OTLP/JSON spans.

Nothing here uses the OpenTelemetry SDK or prometheus_client: spans are plain objects posted
as OTLP/JSON to `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces` by a background thread, metrics are
dictionaries rendered as text exposition format, and every line that reaches stdout or stderr
(tracebacks included) goes through `emit`, which makes it a JSON object and counts it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SERVICE = os.environ.get("OBSCONF_SERVICE", "foreign")

# --- W3C trace context (Level 1) ------------------------------------------------------------

TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True)
class Context:
    """What travels between processes: ids, the sampled flag and the vendor tracestate."""

    trace_id: str
    span_id: str
    sampled: bool = True
    tracestate: str = ""

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def headers(self) -> dict[str, str]:
        out = {"traceparent": self.traceparent()}
        if self.tracestate:
            out["tracestate"] = self.tracestate
        return out


def parse_traceparent(value: str | None) -> Context | None:
    """A valid traceparent as a Context (parent = the caller's span), else None."""
    if value is None:
        return None
    match = TRACEPARENT.match(value.strip(" \t"))
    if not match:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return Context(trace_id, span_id, bool(int(flags, 16) & 1))


def incoming(traceparent: str | None, tracestate: Sequence[str]) -> Context | None:
    """The caller's context; tracestate fields are combined and passed on as they came."""
    parent = parse_traceparent(traceparent)
    if parent is None:
        return None
    members = [m.strip(" \t") for f in tracestate for m in f.split(",")]
    return Context(
        parent.trace_id, parent.span_id, parent.sampled, ",".join(m for m in members if m)
    )


# --- spans ------------------------------------------------------------------------------------

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


@dataclass
class Span:
    name: str
    kind: int
    context: Context
    parent_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    links: list[Context] = field(default_factory=list)
    start_ns: int = field(default_factory=time.time_ns)
    end_ns: int = 0
    error: str | None = None

    def otlp(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "traceId": self.context.trace_id,
            "spanId": self.context.span_id,
            "name": self.name,
            "kind": self.kind,
            "startTimeUnixNano": str(self.start_ns),
            "endTimeUnixNano": str(self.end_ns),
            "attributes": [{"key": k, "value": _any(v)} for k, v in self.attributes.items()],
        }
        if self.parent_id:
            body["parentSpanId"] = self.parent_id
        if self.context.tracestate:
            body["traceState"] = self.context.tracestate
        if self.links:
            body["links"] = [{"traceId": c.trace_id, "spanId": c.span_id} for c in self.links]
        if self.error is not None:
            body["status"] = {"code": 2, "message": self.error}
        return body


def _any(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


current: ContextVar[Span | None] = ContextVar("current_span", default=None)
request_id: ContextVar[str] = ContextVar("request_id", default="")


class Exporter:
    """Posts finished sampled spans as OTLP/JSON every `interval` seconds."""

    def __init__(self, endpoint: str, interval: float) -> None:
        self.url = endpoint.rstrip("/") + "/v1/traces"
        self.interval = interval
        self.pending: list[Span] = []
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="span-export", daemon=True)
        self.thread.start()

    def add(self, span: Span) -> None:
        with self.lock:
            self.pending.append(span)

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
        if not batch:
            return
        document = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": SERVICE}}]
                    },
                    "scopeSpans": [
                        {"scope": {"name": "foreign-impl"}, "spans": [s.otlp() for s in batch]}
                    ],
                }
            ]
        }
        request = urllib.request.Request(
            self.url,
            data=json.dumps(document).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except OSError as error:
            emit("warning", f"span export of {len(batch)} span(s) failed: {error}")

    def shutdown(self) -> None:
        self.stopped.set()
        self.flush()


_exporter: Exporter | None = None


def start_exporter() -> None:
    global _exporter
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    delay_ms = float(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "5000"))
    _exporter = Exporter(endpoint, delay_ms / 1000)


def stop_exporter() -> None:
    if _exporter is not None:
        _exporter.shutdown()


@contextmanager
def span(
    name: str,
    kind: int = 1,
    parent: Context | None = None,
    attributes: dict[str, Any] | None = None,
    links: Sequence[Context] = (),
    new_trace: bool = False,
) -> Iterator[Span]:
    """A span, child of `parent` (a remote context) or else of the current span; the new
    span is current inside the block. An exception marks it ERROR and propagates."""
    local = None if new_trace else current.get()
    parent = parent if parent is not None or new_trace else (local.context if local else None)
    if parent is None:
        context = Context(secrets.token_hex(16), secrets.token_hex(8))
        parent_id = ""
    else:
        context = Context(parent.trace_id, secrets.token_hex(8), parent.sampled, parent.tracestate)
        parent_id = parent.span_id
    made = Span(name, kind, context, parent_id, dict(attributes or {}), list(links))
    token = current.set(made)
    try:
        yield made
    except BaseException as error:
        if made.error is None:
            made.error = f"{type(error).__name__}: {error}"
        raise
    finally:
        current.reset(token)
        made.end_ns = time.time_ns()
        if made.context.sampled and _exporter is not None:
            _exporter.add(made)


def outgoing_headers() -> dict[str, str]:
    """The current span's context as message headers (traceparent, tracestate)."""
    active = current.get()
    return active.context.headers() if active else {}


# --- metrics ----------------------------------------------------------------------------------

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_metrics_lock = threading.Lock()
_counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
_help: dict[str, tuple[str, str]] = {}
_histograms: dict[str, dict[tuple[tuple[str, str], ...], list[float]]] = {}


def _process_start_time() -> float:
    """When this process started, from /proc (boot time + start ticks)."""
    try:
        with open("/proc/stat") as stat:
            boot = next(float(line.split()[1]) for line in stat if line.startswith("btime"))
        with open(f"/proc/{os.getpid()}/stat") as own:
            ticks = float(own.read().rsplit(")", 1)[1].split()[19])
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, IndexError, ValueError):
        return time.time()


PROCESS_START = _process_start_time()


def declare(name: str, kind: str, text: str) -> None:
    _help[name] = (kind, text)
    (_histograms if kind == "histogram" else _counters).setdefault(name, {})


def inc(name: str, amount: float = 1, **labels: str) -> None:
    key = tuple(sorted(labels.items()))
    with _metrics_lock:
        series = _counters[name]
        series[key] = series.get(key, 0.0) + amount


def observe(name: str, seconds: float, **labels: str) -> None:
    key = tuple(sorted(labels.items()))
    with _metrics_lock:
        cells = _histograms[name].setdefault(key, [0.0] * (len(BUCKETS) + 2))
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                cells[i] += 1
        cells[-2] += 1  # count
        cells[-1] += seconds  # sum


def _labels(key: tuple[tuple[str, str], ...], extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in key]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value))


def exposition() -> str:
    out = [
        "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.",
        "# TYPE process_start_time_seconds gauge",
        f"process_start_time_seconds {_number(PROCESS_START)}",
    ]
    with _metrics_lock:
        for name, series in _counters.items():
            kind, text = _help[name]
            out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            out += [f"{name}{_labels(key)} {_number(value)}" for key, value in series.items()]
        for name, series in _histograms.items():
            _, text = _help[name]
            out += [f"# HELP {name} {text}", f"# TYPE {name} histogram"]
            for key, cells in series.items():
                bounds = [*(str(b) for b in BUCKETS), "+Inf"]
                counts = [*cells[: len(BUCKETS)], cells[-2]]
                for bound, count in zip(bounds, counts, strict=True):
                    le = 'le="' + bound + '"'
                    out.append(f"{name}_bucket{_labels(key, le)} {_number(count)}")
                out.append(f"{name}_count{_labels(key)} {_number(cells[-2])}")
                out.append(f"{name}_sum{_labels(key)} {_number(cells[-1])}")
    return "\n".join(out) + "\n"


LOG_LINES = "foreign_log_lines_total"
declare(LOG_LINES, "counter", "Lines written to stdout and stderr, by level.")

# --- logs -------------------------------------------------------------------------------------

_out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
_out_lock = threading.Lock()


def emit(level: str, message: str, **fields: Any) -> None:
    """Write one JSON line with the current trace context and count it."""
    active = current.get()
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
        "level": level,
        "msg": message,
        "service": SERVICE,
        "trace_id": active.context.trace_id if active else "",
        "span_id": active.context.span_id if active else "",
        "request_id": request_id.get(),
        **fields,
    }
    text = json.dumps(line, default=str)
    with _out_lock:
        inc(LOG_LINES, level=level)
        _out.write(text + "\n")


class _LinesToLog:
    """Replaces sys.stdout/sys.stderr: whatever Python prints becomes counted JSON lines."""

    def __init__(self, level: str, stream: str) -> None:
        self.level = level
        self.stream = stream
        self.buffer = ""
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            self.buffer += text
            *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            emit(self.level, line, stream=self.stream)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def capture_std_streams() -> None:
    sys.stdout = _LinesToLog("info", "stdout")  # type: ignore[assignment]
    sys.stderr = _LinesToLog("error", "stderr")  # type: ignore[assignment]
