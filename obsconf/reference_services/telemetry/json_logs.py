"""Structured logs: ts, level, msg, service, trace/span/request ids on every record.

Two ways out, by configuration (`OBSCONF_LOGS`): `file` (default) writes one JSON object per
line on stdout, which the harness appends to the file the log path tails; `otlp` exports each
record over OTLP/HTTP (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`) with the message as body, the trace
and span ids as the record's own, and the other fields as attributes. Fault modes act on the
fields both ways; under `plain-text-logs` the access line is printed as text on stdout (a
stray print beside the structured path).
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import threading
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from opentelemetry import trace

from obsconf.reference_services import faults

if TYPE_CHECKING:
    from opentelemetry._logs import SeverityNumber

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

# LogRecord attributes that are not user-supplied `extra=` fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI duplicate of msg
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; `extra=` fields are added as top-level keys."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        if plain_text(record):
            return f"{record.levelname} {self.service} {record.getMessage()}"
        return json.dumps(self.fields(record), default=str)

    def fields(self, record: logging.LogRecord) -> dict[str, object]:
        """The record's fields, the trace context as the fault modes leave it."""
        context = trace.get_current_span().get_span_context()
        correlated = context.is_valid and not faults.enabled("log-no-trace-id")
        trace_id, span_id = context.trace_id, context.span_id
        if faults.enabled("log-random-trace-id"):
            trace_id, span_id = secrets.randbits(128), secrets.randbits(64)
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
            "service": self.service,
            "trace_id": format(trace_id, "032x") if correlated else "",
            "span_id": format(span_id, "016x") if correlated else "",
            "request_id": request_id_var.get(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["error"] = "".join(traceback.format_exception(*record.exc_info)).strip()
        return line


def plain_text(record: logging.LogRecord) -> bool:
    """The `plain-text-logs` fault: the per-request access line is not structured; the
    `plain-text-error-logs` fault: ERROR lines (5xx, dependency down) are not either."""
    if faults.enabled("plain-text-error-logs") and record.levelno >= logging.ERROR:
        return True
    return faults.enabled("plain-text-logs") and record.name == "reference_services.http"


class OtlpHandler(logging.Handler):
    """Exports each record as an OTLP log record (body = msg; ids the record's own)."""

    def __init__(self, service: str, endpoint: str, flush_ms: int) -> None:
        super().__init__()
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource

        self.formatter_ = JsonFormatter(service)
        self.provider = LoggerProvider(resource=Resource.create({"service.name": service}))
        exporter = OTLPLogExporter(endpoint=endpoint)
        self.provider.add_log_record_processor(
            BatchLogRecordProcessor(exporter, schedule_delay_millis=flush_ms)
        )
        self.logger = self.provider.get_logger("reference_services")

    def emit(self, record: logging.LogRecord) -> None:
        from opentelemetry._logs import LogRecord
        from opentelemetry.context import Context
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        if plain_text(record):
            print(self.formatter_.format(record), flush=True)
            return
        fields = self.formatter_.fields(record)
        trace_id, span_id = str(fields.pop("trace_id")), str(fields.pop("span_id"))
        level, body = str(fields.pop("level")), str(fields.pop("msg"))
        for key in ("ts", "service"):  # the record's timestamp; the resource's service.name
            fields.pop(key)
        # The ids as the fault modes left them ride in the record's context (the SDK takes
        # the current span's for an empty one or zero ids): none, the span's, or random ones.
        context = trace.set_span_in_context(trace.INVALID_SPAN, Context())
        if trace_id:
            span = SpanContext(
                int(trace_id, 16), int(span_id, 16), False, TraceFlags(TraceFlags.SAMPLED)
            )
            context = trace.set_span_in_context(NonRecordingSpan(span), context)
        self.logger.emit(
            LogRecord(
                timestamp=int(record.created * 1e9),
                context=context,
                severity_text=level.upper(),
                severity_number=_SEVERITY.get(level.upper()),
                body=body,
                attributes={
                    k: v if isinstance(v, str | int | float | bool) else str(v)
                    for k, v in fields.items()
                },
            )
        )

    def close(self) -> None:
        self.provider.shutdown()
        super().close()


def _severities() -> dict[str, SeverityNumber]:
    from opentelemetry._logs import SeverityNumber

    return {
        "DEBUG": SeverityNumber.DEBUG,
        "INFO": SeverityNumber.INFO,
        "WARNING": SeverityNumber.WARN,
        "ERROR": SeverityNumber.ERROR,
        "CRITICAL": SeverityNumber.FATAL,
    }


_SEVERITY = _severities()


class CountRecords(logging.Filter):
    """Counts every line the service writes (log_records_total), before any can be lost."""

    def filter(self, record: logging.LogRecord) -> bool:
        from obsconf.reference_services.telemetry.metrics import LOG_RECORDS

        LOG_RECORDS.labels(record.levelname.lower()).inc()
        return True


class DropEveryThird(logging.Filter):
    """The `drop-logs` fault: silently lose every third line."""

    def __init__(self) -> None:
        super().__init__()
        self._count = 0
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            self._count += 1
            return self._count % 3 != 0


def setup_logging(
    service: str,
    level: int = logging.INFO,
    ship: str = "file",
    otlp_logs_endpoint: str = "",
    flush_ms: int = 200,
) -> None:
    """Route every logger (ours, uvicorn's, OpenTelemetry's) to JSON lines on stdout
    (`ship="file"`) or to OTLP log records (`ship="otlp"`)."""
    handler: logging.Handler
    if ship == "otlp":
        handler = OtlpHandler(service, otlp_logs_endpoint, flush_ms)
    else:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter(service))
    handler.addFilter(CountRecords())
    if faults.enabled("drop-logs"):
        handler.addFilter(DropEveryThird())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # we log one line per request ourselves
