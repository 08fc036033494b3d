"""One contract for every log store and trace store adapter.

The same assertions run against each adapter: live against VictoriaLogs and Jaeger on the real
local stack (the lines go through the stack's log path, the spans through its OTLP endpoint),
and over HTTP against recorded Loki and Tempo answers (`tests/data/recorded/`, each file naming
the documentation section whose shapes it follows), replayed by `tests/replay.py` — Loki and
Tempo cannot run here. Log stores run twice: lines shipped from files, and OTLP log records
(VictoriaLogs live through the collector's OTLP receiver; Loki from `loki-otlp.json`, which
follows Loki's OTLP ingestion documentation, "Format considerations": the body is the line,
trace_id and the attributes are structured metadata, answered in the `categorize-labels`
encoding of Loki PR #10419; `loki.json` follows the HTTP API reference, "Query logs within a
range of time", for lines shipped from files, answered without that encoding). Adding a
backend: its adapter module, a case below, and its recording or a live stack.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from obsconf.conformance.clients.registry import StoreSpec, adapters, open_store
from obsconf.conformance.clients.traces import TraceNotFound
from obsconf.conformance.system import stack_store
from obsconf.stack.waiting import poll
from tests.replay import Replay

RECORDED = Path(__file__).parent / "data" / "recorded"
ROOT, PUBLISH, PROCESS = "POST /api/users", "user.created publish", "user.created process"
UNKNOWN_TRACE = "0123456789abcdef0123456789abcdef"


def seed_lines(service: str, a: str, b: str) -> tuple[list[str], list[str]]:
    """The lines every log store case holds: two groups written one after the other."""

    def line(msg: str, trace_id: str) -> str:
        fields = {"level": "info", "msg": msg, "service": service, "trace_id": trace_id}
        return json.dumps(fields)

    # Unique per service: a tailing shipper may take files that begin alike for one file.
    return [line("one", a), f"plain line two of {service}"], [line("three", b), line("four", a)]


@dataclass
class LogCase:
    store: Any
    service: str
    trace_a: str
    trace_b: str


@dataclass
class TraceCase:
    store: Any
    trace_id: str
    api: str  # service of the root and publish spans
    worker: str  # service of the consume span
    start_s: float
    end_s: float


def _recorded_log_case(name: str, kind: str, spec: dict[str, str]) -> Iterator[LogCase]:
    recording = RECORDED / f"{name}.json"
    seed = json.loads(recording.read_text())["seed"]
    with Replay(recording) as replay:
        store = open_store("logs", StoreSpec(kind, replay.url, spec))
        yield LogCase(store, seed["service"], seed["trace_a"], seed["trace_b"])
        store.close()
    assert not replay.unmatched, replay.unmatched


def _otlp_records(service: str, lines: list[str]) -> dict[str, Any]:
    """JSON lines as OTLP log records: msg the body, trace_id the record's own, the rest
    attributes, service the resource's service.name."""
    records = []
    for line in lines:
        fields = json.loads(line)
        records.append(
            {
                "timeUnixNano": str(time.time_ns()),
                "severityText": fields.pop("level").upper(),
                "body": {"stringValue": fields.pop("msg")},
                "traceId": fields.pop("trace_id"),
                "attributes": [
                    {"key": k, "value": {"stringValue": v}}
                    for k, v in fields.items()
                    if k != "service"
                ],
            }
        )
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return {"resourceLogs": [{"resource": resource, "scopeLogs": [{"logRecords": records}]}]}


def _live_log_case(request: pytest.FixtureRequest, otlp: bool) -> Iterator[LogCase]:
    """Lines through the stack's log path: written to a tailed file, or (`otlp`) the JSON ones
    sent as OTLP log records and the plain one written to the file."""
    endpoints = request.getfixturevalue("endpoints")
    service, a, b = f"contract-{secrets.token_hex(4)}", secrets.token_hex(16), secrets.token_hex(16)
    store = stack_store("logs", endpoints)
    first, second = seed_lines(service, a, b)
    log_file = Path(endpoints.log_dir) / f"{service}.log"
    for group, total in ((first, 2), (second, 4)):  # the second group is stored later
        structured = [line for line in group if line.startswith("{")]
        if otlp:
            document = _otlp_records(service, structured)
            response = httpx.post(endpoints.otlp_logs, json=document, timeout=5)
            assert response.status_code == 200, response.text
        written = [line for line in group if not (otlp and line in structured)]
        with log_file.open("a") as out:
            out.write("".join(f"{line}\n" for line in written))
        poll(
            lambda: store.lines(service),
            until=lambda found, total=total: len(found) == total,
            timeout=20,
            describe=f"{total} {service} lines in the log store",
        )
    yield LogCase(store, service, a, b)
    store.close()
    log_file.unlink()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("victorialogs", marks=pytest.mark.stack),
        pytest.param("victorialogs-otlp-records", marks=pytest.mark.stack),
        "loki",
        "loki-otlp-records",
    ],
)
def log_case(request: pytest.FixtureRequest) -> Iterator[LogCase]:
    if request.param.startswith("victorialogs"):
        yield from _live_log_case(request, otlp=request.param.endswith("otlp-records"))
    else:
        name = "loki-otlp" if request.param.endswith("otlp-records") else "loki"
        yield from _recorded_log_case(name, "loki", {"tenant": "team-a"})


def _otlp_trace(trace_id: str, api: str, worker: str, start_ns: int) -> dict[str, Any]:
    """The trace every trace store case holds, as OTLP JSON: SERVER → PRODUCER → CONSUMER."""
    ids = {ROOT: secrets.token_hex(8), PUBLISH: secrets.token_hex(8), PROCESS: secrets.token_hex(8)}

    def span(name: str, kind: int, parent: str, offset_ms: int) -> dict[str, Any]:
        return {
            "traceId": trace_id,
            "spanId": ids[name],
            "parentSpanId": ids[parent] if parent else "",
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start_ns + offset_ms * 1_000_000),
            "endTimeUnixNano": str(start_ns + (offset_ms + 10) * 1_000_000),
            "attributes": [{"key": "http.route", "value": {"stringValue": "/api/users"}}],
        }

    def resource(service: str, spans: list) -> dict[str, Any]:
        attributes = [{"key": "service.name", "value": {"stringValue": service}}]
        return {"resource": {"attributes": attributes}, "scopeSpans": [{"spans": spans}]}

    return {
        "resourceSpans": [
            resource(api, [span(ROOT, 2, "", 0), span(PUBLISH, 4, ROOT, 5)]),
            resource(worker, [span(PROCESS, 5, PUBLISH, 20)]),
        ]
    }


def _live_trace_case(request: pytest.FixtureRequest) -> Iterator[TraceCase]:
    endpoints = request.getfixturevalue("endpoints")
    suffix = secrets.token_hex(4)
    api, worker = f"contract-api-{suffix}", f"contract-worker-{suffix}"
    trace_id = secrets.token_hex(16)
    start = time.time()
    document = _otlp_trace(trace_id, api, worker, int(start * 1e9))
    response = httpx.post(f"{endpoints.otlp}/v1/traces", json=document, timeout=5)
    assert response.status_code == 200, response.text
    store = stack_store("traces", endpoints)
    case = TraceCase(store, trace_id, api, worker, start, start + 0.03)
    poll(
        lambda: trace_id in store.search(api, case.start_s - 1, case.end_s + 1),
        timeout=20,
        describe=f"trace {trace_id} searchable in the trace store",
    )
    yield case
    store.close()


def _recorded_trace_case(name: str, spec: dict[str, str]) -> Iterator[TraceCase]:
    recording = RECORDED / f"{name}.json"
    seed = json.loads(recording.read_text())["seed"]
    with Replay(recording) as replay:
        store = open_store("traces", StoreSpec("tempo", replay.url, spec))
        yield TraceCase(
            store, seed["trace_id"], seed["api"], seed["worker"], seed["start_s"], seed["end_s"]
        )
        store.close()
    assert not replay.unmatched, replay.unmatched


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("jaeger", marks=pytest.mark.stack),
        "tempo",
        "tempo-v1",
    ],
)
def trace_case(request: pytest.FixtureRequest) -> Iterator[TraceCase]:
    if request.param == "jaeger":
        yield from _live_trace_case(request)
    elif request.param == "tempo":
        yield from _recorded_trace_case("tempo", {})
    else:
        yield from _recorded_trace_case("tempo-v1", {"api": "v1"})


# --- the contract: log stores ----------------------------------------------------------------


def _messages(lines: list) -> list[str | None]:
    return [line.get("msg") for line in lines]


def test_log_store_returns_a_services_lines_oldest_first_parsed(log_case: LogCase) -> None:
    lines = log_case.store.lines(log_case.service)
    assert _messages(lines) == ["one", None, "three", "four"]
    assert lines[1].fields is None and lines[1].raw == f"plain line two of {log_case.service}"
    assert all(line.get("service") == log_case.service for line in lines if line.fields)
    assert [line.time for line in lines] == sorted(line.time for line in lines)
    assert log_case.store.count(log_case.service) == 4


def test_log_store_filters_on_field_equality(log_case: LogCase) -> None:
    store, service = log_case.store, log_case.service
    found = store.lines(service, trace_id=log_case.trace_a)
    assert _messages(found) == ["one", "four"]
    assert {line.get("trace_id") for line in found} == {log_case.trace_a}
    assert store.count(service, trace_id=log_case.trace_a) == 2
    assert _messages(store.lines(service, trace_id=log_case.trace_b)) == ["three"]


def test_log_store_filters_on_a_time_window(log_case: LogCase) -> None:
    store, service = log_case.store, log_case.service
    times = [line.time for line in store.lines(service)]
    middle = (times[1] + times[2]) / 2
    assert _messages(store.lines(service, since=middle)) == ["three", "four"]
    assert store.count(service, since=middle) == 2


def test_log_store_knows_no_line_of_a_silent_service(log_case: LogCase) -> None:
    assert log_case.store.lines(f"{log_case.service}-silent") == []
    assert log_case.store.count(f"{log_case.service}-silent") == 0


def test_log_store_shows_its_query_and_is_ready(log_case: LogCase) -> None:
    text = log_case.store.query_text(log_case.service, trace_id=log_case.trace_a)
    assert log_case.service in text and log_case.trace_a in text
    assert log_case.store.kind in adapters("logs")
    assert httpx.get(log_case.store.ready_url, timeout=5).status_code < 500


# --- the contract: trace stores --------------------------------------------------------------


def test_trace_store_returns_every_span_of_a_trace(trace_case: TraceCase) -> None:
    spans = {span.name: span for span in trace_case.store.trace(trace_case.trace_id)}
    assert set(spans) == {ROOT, PUBLISH, PROCESS}
    assert {span.trace_id for span in spans.values()} == {trace_case.trace_id}
    assert [spans[n].kind for n in (ROOT, PUBLISH, PROCESS)] == ["SERVER", "PRODUCER", "CONSUMER"]
    assert spans[ROOT].is_root
    assert spans[PUBLISH].parent_span_id == spans[ROOT].span_id
    assert spans[PROCESS].parent_span_id == spans[PUBLISH].span_id
    assert all(len(span.span_id) == 16 for span in spans.values())
    assert [spans[n].service for n in (ROOT, PROCESS)] == [trace_case.api, trace_case.worker]
    assert spans[ROOT].attributes["http.route"] == "/api/users"
    assert trace_case.trace_id in trace_case.store.trace_url(trace_case.trace_id)


def test_trace_store_says_when_a_trace_is_not_there(trace_case: TraceCase) -> None:
    with pytest.raises(TraceNotFound):
        trace_case.store.trace(UNKNOWN_TRACE)


def test_trace_store_finds_a_services_traces_in_a_window(trace_case: TraceCase) -> None:
    store, start = trace_case.store, trace_case.start_s
    found = store.search(trace_case.api, start - 1, trace_case.end_s + 1)
    assert trace_case.trace_id in found
    assert {span.name for span in found[trace_case.trace_id]} == {ROOT, PUBLISH, PROCESS}
    assert trace_case.trace_id not in store.search(trace_case.api, start - 7200, start - 3600)


def test_trace_store_is_ready(trace_case: TraceCase) -> None:
    assert httpx.get(trace_case.store.ready_url, timeout=5).status_code < 500
