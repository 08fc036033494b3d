"""LOG: logs are structured JSON, correlated with traces, and none is lost on the way."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from obsconf.conformance.checks import check_equal
from obsconf.conformance.clients.logs import LogLine
from obsconf.conformance.clients.traces import TraceNotFound
from obsconf.conformance.evidence import (
    CompareEvidence,
    LogEvidence,
    LogQueryEvidence,
    Recorder,
)
from obsconf.conformance.logs import REQUIRED_KEYS, describe_lines, lines_between, request_lines
from obsconf.conformance.metrics import await_scrape_after
from obsconf.conformance.scenarios import Flow
from obsconf.conformance.system import System
from obsconf.conformance.traces.expectation import Hop
from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.semconv import is_consume, is_publish, subject_of
from obsconf.stack.waiting import PollTimeout, poll


@pytest.fixture(scope="module")
def flow_lines(obsconf_system: System, obsconf_flow: Flow) -> dict[str, list[LogLine]]:
    """Every line each service wrote during the flow (request + asynchronous hops)."""
    poll(
        lambda: obsconf_system.logs.lines(
            obsconf_system.names["user"], since=obsconf_flow.call.started - 1
        ),
        until=bool,
        timeout=10,
        describe="the flow's first log lines in the log store",
    )
    return {
        name: lines_between(obsconf_system, name, obsconf_flow.call.started, obsconf_flow.ended)
        for name in obsconf_flow.expectation.services
    }


@pytest.fixture(scope="module")
def in_request(obsconf_system: System, obsconf_flow: Flow) -> list[LogLine]:
    lines = request_lines(obsconf_system, obsconf_flow.call)
    assert lines, (
        f"no {obsconf_system.names['user']} log line found in the log store for the request "
        f"window of {obsconf_flow.call.describe()}"
    )
    return lines


@pytest.mark.guarantee("LOG-JSON-LINES")
def test_log_json_lines(flow_lines: dict[str, list[LogLine]], obsconf_evidence: Recorder) -> None:
    bad = [ln for lines in flow_lines.values() for ln in lines if ln.fields is None]
    obsconf_evidence(
        LogEvidence(
            check="lines that are not one JSON object",
            seen=[ln.raw for ln in bad[:20]],
            expected="none",
        )
    )
    assert not bad, f"{len(bad)} log line(s) are not JSON objects:\n{describe_lines(bad)}"


@pytest.mark.guarantee("LOG-REQUIRED-KEYS")
def test_log_required_keys(
    flow_lines: dict[str, list[LogLine]], obsconf_evidence: Recorder
) -> None:
    bad = [
        ln
        for lines in flow_lines.values()
        for ln in lines
        if ln.fields is None or any(key not in ln.fields for key in REQUIRED_KEYS)
    ]
    obsconf_evidence(
        LogEvidence(
            check=f"lines missing one of {REQUIRED_KEYS}",
            seen=[ln.raw for ln in bad[:20]],
            expected="none",
        )
    )
    assert not bad, f"{len(bad)} line(s) lack one of {REQUIRED_KEYS}:\n{describe_lines(bad)}"


@pytest.mark.guarantee("LOG-SERVICE-FIELD")
def test_log_service_field(
    flow_lines: dict[str, list[LogLine]], obsconf_evidence: Recorder
) -> None:
    bad = [
        (name, ln)
        for name, lines in flow_lines.items()
        for ln in lines
        if ln.get("service") != name
    ]
    obsconf_evidence(
        LogEvidence(
            check="lines whose service field is not the writer",
            seen=[f"{name}: {ln.raw}" for name, ln in bad[:20]],
            expected="none",
        )
    )
    assert not bad, f"{len(bad)} line(s) name another service (or none):\n" + describe_lines(
        [ln for _, ln in bad]
    )


@pytest.mark.guarantee("LOG-TRACE-ID-IN-REQUEST")
def test_log_trace_id_in_request(
    obsconf_flow: Flow, in_request: list[LogLine], obsconf_evidence: Recorder
) -> None:
    bad = [ln for ln in in_request if ln.get("trace_id") != obsconf_flow.trace_id]
    obsconf_evidence(
        LogEvidence(
            check="request lines without the request's trace_id",
            expected=obsconf_flow.trace_id,
            seen=[ln.raw for ln in bad[:20]],
        )
    )
    assert not bad, (
        f"{len(bad)} of {len(in_request)} line(s) written during "
        f"{obsconf_flow.call.describe()} do not carry trace_id {obsconf_flow.trace_id}:\n"
        f"{describe_lines(bad)}"
    )


@pytest.mark.guarantee("LOG-SPAN-ID-IN-REQUEST")
def test_log_span_id_in_request(
    obsconf_flow: Flow, in_request: list[LogLine], obsconf_evidence: Recorder
) -> None:
    span_ids = {s.span_id for s in obsconf_flow.spans}
    bad = [ln for ln in in_request if ln.get("span_id") not in span_ids]
    obsconf_evidence(
        LogEvidence(
            check="request lines whose span_id is not a span of the trace",
            expected=sorted(span_ids),
            seen=[ln.raw for ln in bad[:20]],
        )
    )
    assert not bad, (
        f"{len(bad)} line(s) written during {obsconf_flow.call.describe()} carry a span_id "
        f"that is not a span of trace {obsconf_flow.trace_id}:\n{describe_lines(bad)}"
    )


def _await_lines_with_trace(
    system: System,
    service: str,
    trace_id: str,
    evidence: Recorder,
    check: str,
    explain: Callable[[], str],
) -> None:
    """Poll the log store for `service` lines carrying `trace_id`; on timeout fail with
    `explain()` and the log query that was run."""
    query = system.logs.query_text(service, trace_id=trace_id)
    evidence(LogQueryEvidence(check=check, language=system.logs.language, query=query))
    try:
        poll(
            lambda: system.logs.lines(service, trace_id=trace_id),
            until=bool,
            timeout=10,
            describe=f"{service} lines with trace_id {trace_id}",
        )
    except PollTimeout:
        raise AssertionError(f"{explain()}\n  {system.logs.language}: {query}") from None


@pytest.mark.guarantee("LOG-FINDABLE-BY-TRACE")
def test_log_findable_by_trace(
    obsconf_system: System, obsconf_flow: Flow, obsconf_evidence: Recorder
) -> None:
    service = obsconf_system.names["user"]
    _await_lines_with_trace(
        obsconf_system,
        service,
        obsconf_flow.trace_id,
        obsconf_evidence,
        "lines found by service and trace_id",
        lambda: (
            f"no {service} line found by trace_id {obsconf_flow.trace_id} "
            f"(request {obsconf_flow.call.describe()})"
        ),
    )


@pytest.mark.guarantee("LOG-TRACE-ID-RESOLVES")
def test_log_trace_id_resolves(
    obsconf_system: System, flow_lines: dict[str, list[LogLine]], obsconf_evidence: Recorder
) -> None:
    trace_ids = {ln.get("trace_id") for lines in flow_lines.values() for ln in lines} - {None, ""}
    assert trace_ids, "no line of the flow carries a trace_id"
    missing = []
    for trace_id in sorted(trace_ids):
        try:
            obsconf_system.traces.trace(trace_id)
        except TraceNotFound:
            missing.append(trace_id)
    obsconf_evidence(
        CompareEvidence(
            check="trace ids in the logs found in the trace store",
            query=obsconf_system.traces.trace_url("<id>"),
            expected=sorted(trace_ids),
            seen=missing,
        )
    )
    assert not missing, (
        f"{len(missing)} of {len(trace_ids)} trace id(s) in the logs have no "
        f"trace in the trace store: {', '.join(missing[:5])}"
    )


def _hop_spans(flow: Flow, subject: str) -> tuple[Span | None, Span | None]:
    """The flow's (publish, consume) spans on `subject` (None where the flow has none)."""
    publish = next((s for s in flow.spans if is_publish(s) and subject_of(s) == subject), None)
    consume = next((s for s in flow.spans if is_consume(s) and subject_of(s) == subject), None)
    return publish, consume


def _consume_span(flow: Flow, hop: Hop) -> Span:
    """The flow's consume span of `hop`; fails naming what the flow holds instead."""
    _, consume = _hop_spans(flow, hop.subject)
    assert consume is not None, (
        f"the flow holds no {hop.consumer_service} consume span on {hop.subject} "
        f"({flow.settled.describe_wait()}), so its lines cannot be tied to the flow: the "
        f"trace context was lost on the hop (see TRC-ONE-TRACE-PER-FLOW)"
    )
    return consume


@pytest.mark.guarantee("LOG-CONSUMER-CORRELATED")
def test_log_consumer_correlated(
    obsconf_system: System, obsconf_flow: Flow, obsconf_evidence: Recorder
) -> None:
    """Each consumer's lines are found by the trace id of its consume span: the flow's trace,
    or, where consumers link, the linked trace that span roots."""
    for hop in obsconf_flow.expectation.hops:
        consume = _consume_span(obsconf_flow, hop)
        service = hop.consumer_service

        def explain(service: str = service, consume: Span = consume) -> str:
            window = lines_between(
                obsconf_system, service, obsconf_flow.call.started, obsconf_flow.ended
            )
            return (
                f"{service} wrote no line with trace_id {consume.trace_id} (the trace of its "
                f"consume span {consume.span_id}) while processing the flow's message; its "
                f"lines in the flow's window:\n{describe_lines(window)}"
            )

        _await_lines_with_trace(
            obsconf_system,
            service,
            consume.trace_id,
            obsconf_evidence,
            f"{service} lines carrying the trace_id of its consume span",
            explain,
        )


@pytest.mark.guarantee("LOG-CONSUMER-EVERY-LINE")
def test_log_consumer_every_line(
    obsconf_system: System, obsconf_flow: Flow, obsconf_evidence: Recorder
) -> None:
    """Every line a consumer writes between the publish of the flow's message and the end of
    its consume span carries the consume span's trace_id and a span_id of that trace."""
    problems = []
    for hop in obsconf_flow.expectation.hops:
        publish, consume = _hop_spans(obsconf_flow, hop.subject)
        consume = consume or _consume_span(obsconf_flow, hop)
        since = (publish or consume).start_ns / 1e9
        lines = lines_between(obsconf_system, hop.consumer_service, since, consume.end_ns / 1e9)
        span_ids = {s.span_id for s in obsconf_flow.traces.get(consume.trace_id, [])}
        bad = [
            ln
            for ln in lines
            if ln.get("trace_id") != consume.trace_id or ln.get("span_id") not in span_ids
        ]
        obsconf_evidence(
            LogEvidence(
                check=f"{hop.consumer_service} lines while processing {hop.subject}",
                query=obsconf_system.logs.query_text(hop.consumer_service, since=since),
                expected=f"trace_id {consume.trace_id} and a span_id of that trace on all "
                f"{len(lines)} line(s)",
                seen=[ln.raw for ln in bad[:20]] or "all correlated",
            )
        )
        if not lines:
            problems.append(f"{hop.consumer_service} wrote no line while processing {hop.subject}")
        elif bad:
            problems.append(
                f"{len(bad)} of {len(lines)} {hop.consumer_service} line(s) written while "
                f"processing {hop.subject} lack trace_id {consume.trace_id} or a span_id of "
                f"that trace:\n{describe_lines(bad)}"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.guarantee("LOG-REQUEST-ID")
def test_log_request_id(
    obsconf_flow: Flow, in_request: list[LogLine], obsconf_evidence: Recorder
) -> None:
    bad = [ln for ln in in_request if ln.get("request_id") != obsconf_flow.call.request_id]
    obsconf_evidence(
        LogEvidence(
            check="request lines without the X-Request-ID sent",
            expected=obsconf_flow.call.request_id,
            seen=[ln.raw for ln in bad[:20]],
        )
    )
    assert not bad, (
        f"{len(bad)} line(s) written during {obsconf_flow.call.describe()} do not carry "
        f"request_id {obsconf_flow.call.request_id}:\n{describe_lines(bad)}"
    )


def check_no_log_loss(system: System, evidence: Recorder, after: float) -> None:
    """Per service: lines counted by the service (log_records_total) == lines in the store
    since the process started. Polled: the shipper may still be catching up."""
    metric = system.target.metrics["log_records"]
    label = system.target.labels["service"]
    for name in system.names.values():
        counted_q = f'sum({metric}{{{label}="{name}"}})'
        start_q = f'max(process_start_time_seconds{{{label}="{name}"}})'
        await_scrape_after(system.prometheus, name, after)
        started = system.prometheus.value(start_q)
        assert started is not None, f"no process_start_time_seconds for {name}: {start_q}"
        stored_q = system.logs.query_text(name, since=started)

        def both(
            counted_q: str = counted_q, name: str = name, started: float = started
        ) -> tuple[float | None, int]:
            return system.prometheus.value(counted_q), system.logs.count(name, since=started)

        try:
            counted, stored = poll(
                both,
                until=lambda pair: pair[0] == pair[1],
                timeout=10,
                describe=f"{name}: lines counted == lines stored",
            )
        except PollTimeout:
            counted, stored = both()
        check_equal(
            f"{name}: lines the service counted as written vs lines in the log store",
            f"{counted_q}  vs  count of {system.logs.language} {stored_q}",
            counted,
            stored,
            evidence,
        )


@pytest.mark.guarantee("LOG-NO-LOSS")
def test_log_no_loss(
    obsconf_system: System, obsconf_flow: Flow, obsconf_evidence: Recorder
) -> None:
    check_no_log_loss(obsconf_system, obsconf_evidence, after=obsconf_flow.ended)
