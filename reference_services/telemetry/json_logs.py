"""JSON logs on stdout: one object per line with ts, level, msg, service, trace/span/request ids."""

from __future__ import annotations

import json
import logging
import secrets
import sys
import threading
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime

from opentelemetry import trace

from obsconf.reference_services import faults

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
        context = trace.get_current_span().get_span_context()
        correlated = context.is_valid and not faults.enabled("log-no-trace-id")
        trace_id, span_id = context.trace_id, context.span_id
        if faults.enabled("log-random-trace-id"):
            trace_id, span_id = secrets.randbits(128), secrets.randbits(64)
        if faults.enabled("plain-text-logs") and record.name == "reference_services.http":
            return f"{record.levelname} {self.service} {record.getMessage()}"
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
        return json.dumps(line, default=str)


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


def setup_logging(service: str, level: int = logging.INFO) -> None:
    """Route every logger (ours, uvicorn's, OpenTelemetry's) through the JSON formatter."""
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
