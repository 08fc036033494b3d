"""How the VictoriaLogs adapter reads a stored entry: a line of a tailed file is the line's
JSON; an OTLP log record is its own fields under the contract's keys (the entry shapes are those
VictoriaLogs 1.52 returned here for each path through the collector)."""

from __future__ import annotations

from obsconf.conformance.clients.victorialogs import is_otlp_record, otlp_fields

FILE_LINE = {
    "_msg": '{"msg": "hello", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}',
    "_time": "2026-11-26T14:57:00.711630866Z",
    "log.file.name": "svc-a.log",
    "scope.name": "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/"
    "filelogreceiver",
    "service.name": "svc-a",
    "severity_text": "Unspecified",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
}
OTLP_RECORD = {
    "_msg": "otlp hello",
    "_time": "2026-11-26T14:57:07.337954019Z",
    "code.lineno": "12",
    "request_id": "r1",
    "scope.name": "unknown",
    "scope.version": "unknown",
    "service.name": "svc-b",
    "severity_number": "0",
    "severity_text": "INFO",
    "span_id": "00f067aa0ba902b7",
    "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
}


def test_a_line_from_a_file_is_not_read_as_an_otlp_record() -> None:
    assert not is_otlp_record(FILE_LINE)
    assert not is_otlp_record({"_msg": "x", "_time": "…", "host": "svc"})  # another shipper
    assert is_otlp_record(OTLP_RECORD)


def test_an_otlp_record_is_read_from_its_own_fields() -> None:
    assert otlp_fields(OTLP_RECORD) == {
        "ts": "2026-11-26T14:57:07.337954019Z",
        "level": "info",
        "msg": "otlp hello",
        "service": "svc-b",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "request_id": "r1",
        "code.lineno": "12",
    }


def test_the_level_comes_from_the_severity_number_when_no_text_is_given() -> None:
    record = {**OTLP_RECORD, "severity_text": "", "severity_number": "17"}
    assert otlp_fields(record)["level"] == "error"
    assert "level" not in otlp_fields({**record, "severity_number": "0"})
