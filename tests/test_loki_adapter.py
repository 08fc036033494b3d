"""The Loki adapter's own behaviour beyond the shared contract, on answers shaped as Loki's
documentation describes them: the HTTP API reference, "Query logs within a range of time"
(`values` pairs of [ns-string, line], at most `limit` entries per answer, `direction=forward`
oldest first); "Ingesting logs to Loki using OpenTelemetry Collector", "Format considerations"
(an OTLP record's body is the line; trace_id, span_id, severity_text, severity_number and the
record's attributes, `.` turned to `_`, are structured metadata; service.name is the index label
service_name); and the `categorize-labels` response encoding (Loki PR #10419: each value
`[ns, line, {"structuredMetadata": {…}, "parsed": {…}}]`, `data.encodingFlags`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from obsconf.conformance.clients import loki
from obsconf.conformance.clients.loki import Entry, Loki, _entries, is_otlp_record, read_entry
from tests.replay import Replay


def _answer(*entries: tuple[int, str]) -> dict:
    values = [[str(ns), line] for ns, line in entries]
    result = [{"stream": {"service_name": "svc"}, "values": values}] if values else []
    return {"status": "success", "data": {"resultType": "streams", "result": result}}


def test_lines_beyond_one_answer_are_read_in_forward_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loki, "PAGE", 2)
    start = 1764158400_000000000
    first = [(start + 1, '{"msg": "a"}'), (start + 2, '{"msg": "b"}')]

    def page(begin: int, *entries: tuple[int, str]) -> dict:
        request = {"path": "/loki/api/v1/query_range", "params": {"start": str(begin)}}
        return {"request": request, "response": {"body": _answer(*entries)}}

    recording = tmp_path / "paged.json"
    recording.write_text(
        json.dumps(
            {
                "formats": {"limit": "2", "direction": "forward"},
                "exchanges": [
                    page(start, *first),
                    page(start + 3, (start + 5, '{"msg": "c"}')),
                ],
            }
        )
    )
    with Replay(recording) as replay:
        store = loki.Loki(replay.url)
        lines = store.lines("svc", since=start / 1e9, until=start / 1e9 + 1)
        store.close()
    assert [line.get("msg") for line in lines] == ["a", "b", "c"]
    assert not replay.unmatched, replay.unmatched


def test_a_failed_query_names_the_logql_and_the_answer(tmp_path: Path) -> None:
    recording = tmp_path / "bad.json"
    recording.write_text(json.dumps({"exchanges": []}))
    with Replay(recording) as replay:
        store = loki.Loki(replay.url, service_label="app")
        with pytest.raises(loki.BackendError, match=r'LogQL .*\{app=\\?"svc\\?"\}.* 400'):
            store.lines("svc")
        store.close()


NS = 1764158400000000000
TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
OTLP_METADATA = {
    "severity_text": "INFO",
    "severity_number": "9",
    "trace_id": TRACE,
    "span_id": SPAN,
    "request_id": "r1",
    "code_lineno": "12",  # code.lineno
    "scope_name": "reference_services.user",
    "detected_level": "info",
}
FILE_METADATA = {  # a line the collector tailed, exported to Loki over OTLP
    "log_file_name": "svc.log",
    "scope_name": "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/"
    "filelogreceiver",
}


def test_an_otlp_record_is_read_from_its_structured_metadata() -> None:
    entry = Entry(NS, "user created", {"service_name": "svc"}, OTLP_METADATA)
    assert is_otlp_record(entry.metadata)
    line = read_entry(entry)
    assert line.fields == {
        "ts": "2025-11-26T12:00:00Z",
        "level": "info",
        "msg": "user created",
        "service": "svc",
        "trace_id": TRACE,
        "span_id": SPAN,
        "request_id": "r1",
        "code_lineno": "12",
    }
    assert line.time == NS / 1e9


def test_the_level_comes_from_the_severity_number_when_no_text_is_given() -> None:
    metadata = {"severity_number": "17", "trace_id": TRACE}
    assert read_entry(Entry(NS, "boom", {"service_name": "svc"}, metadata)).get("level") == "error"


def test_lines_of_files_are_read_as_written() -> None:
    plain = Entry(NS, "plain line", {"service_name": "svc"}, FILE_METADATA)
    assert not is_otlp_record(plain.metadata)
    assert read_entry(plain).fields is None
    json_line = json.dumps({"msg": "hi", "trace_id": TRACE})
    folded = {"service_name": "svc", "msg": "hi", "trace_id": TRACE}  # `| json` labels, folded
    assert read_entry(Entry(NS, json_line, folded, folded)).fields == {
        "msg": "hi",
        "trace_id": TRACE,
    }


def test_categorized_and_folded_answers_give_the_same_entries() -> None:
    categorized = {
        "encodingFlags": ["categorize-labels"],
        "result": [
            {
                "stream": {"service_name": "svc"},
                "values": [[str(NS), "x", {"structuredMetadata": {"trace_id": TRACE}}]],
            }
        ],
    }
    folded = {
        "result": [
            {"stream": {"service_name": "svc", "trace_id": TRACE}, "values": [[str(NS), "x"]]}
        ]
    }
    [a], [b] = _entries(categorized), _entries(folded)
    assert a.metadata == {"trace_id": TRACE} and a.labels == {"service_name": "svc"}
    assert b.metadata["trace_id"] == TRACE
    assert read_entry(a).fields == read_entry(b).fields


def test_field_equality_asks_for_json_lines_and_for_structured_metadata() -> None:
    store = Loki("http://127.0.0.1:1")
    try:
        assert store.query_text("svc") == '{service_name="svc"}'
        assert store.query_text("svc", trace_id=TRACE).splitlines() == [
            f'{{service_name="svc"}} |= "{TRACE}" | json | trace_id="{TRACE}"',
            f'{{service_name="svc"}} | trace_id="{TRACE}"',
        ]
        assert store._http.headers["X-Loki-Response-Encoding-Flags"] == "categorize-labels"
    finally:
        store.close()
