"""TRC: one client request yields one unbroken trace through every hop."""

from __future__ import annotations

import pytest

from obsconf.conformance.checks import check_findings, flow_spans
from obsconf.conformance.driver import Driver
from obsconf.conformance.evidence import CompareEvidence, Recorder, SpanEvidence
from obsconf.conformance.scenarios import Flow, poll_trace_ready
from obsconf.conformance.system import System
from obsconf.conformance.traces.model import Span
from obsconf.conformance.traces.rules import analyse_flow, counted_roots
from obsconf.conformance.traces.semconv import is_consume, is_publish


@pytest.mark.guarantee("TRC-ONE-TRACE-PER-FLOW")
def test_trc_one_trace_per_flow(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    check_findings(
        obsconf_flow,
        {"consumer-root", "multiple-roots", "mixed-trace-ids"},
        obsconf_evidence,
        "the flow's spans are split over several traces",
    )


@pytest.mark.guarantee("TRC-SINGLE-ROOT")
def test_trc_single_root(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    check_findings(
        obsconf_flow,
        {"multiple-roots", "consumer-root"},
        obsconf_evidence,
        "the flow has more than one root span",
    )
    roots = counted_roots(flow_spans(obsconf_flow), obsconf_flow.expectation)
    links = " (consume spans linked to their publish span do not count)" * (
        obsconf_flow.expectation.consumer_relation == "link"
    )
    assert len(roots) == 1, f"expected exactly one root span{links}, found {len(roots)}: " + (
        ", ".join(s.describe() for s in roots) or f"none ({obsconf_flow.settled.describe_wait()})"
    )
    root, entry = roots[0], obsconf_flow.expectation.services[0]
    assert root.service == entry and root.kind == "SERVER", (
        f"the root should be the {entry} SERVER span, it is {root.describe()}"
    )


@pytest.mark.guarantee("TRC-NO-ORPHANS")
def test_trc_no_orphans(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    check_findings(
        obsconf_flow, {"orphan"}, obsconf_evidence, "spans whose parent is not in the trace"
    )


@pytest.mark.guarantee("TRC-CROSS-SERVICE-PATH")
def test_trc_cross_service_path(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    check_findings(
        obsconf_flow,
        {"missing-service", "service-order"},
        obsconf_evidence,
        "the user-creation flow does not reach every service in order",
        findings=analyse_flow(obsconf_flow.traces, obsconf_flow.expectation),
    )


def _messaging_spans(flow: Flow, role: str) -> list[Span]:
    test = is_publish if role == "publish" else is_consume
    return [s for s in flow_spans(flow) if test(s)]


def _check_kind(flow: Flow, role: str, kind: str, evidence: Recorder) -> None:
    """Every `role` (publish/consume) messaging span of the flow has `kind`."""
    spans = _messaging_spans(flow, role)
    name = "publish <subject>" if role == "publish" else "process <subject>"
    assert spans, f"no {role} span found in the flow (nothing named '{name}')"
    wrong = [s for s in spans if s.kind != kind]
    evidence(
        SpanEvidence(check=f"{role} span kinds", seen=[s.describe() for s in spans], expected=kind)
    )
    assert not wrong, f"{role} spans that are not {kind}: " + "; ".join(s.describe() for s in wrong)


@pytest.mark.guarantee("TRC-PRODUCER-KIND")
def test_trc_producer_kind(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    _check_kind(obsconf_flow, "publish", "PRODUCER", obsconf_evidence)


@pytest.mark.guarantee("TRC-CONSUMER-KIND")
def test_trc_consumer_kind(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    _check_kind(obsconf_flow, "consume", "CONSUMER", obsconf_evidence)


@pytest.mark.guarantee("TRC-CONSUMER-PARENT-IS-PRODUCER")
def test_trc_consumer_parent_is_producer(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    assert _messaging_spans(obsconf_flow, "consume"), "no consume span found in the flow"
    check_findings(
        obsconf_flow,
        {"consumer-parent-not-producer", "orphan", "wrong-kind"},
        obsconf_evidence,
        "a consume span is not the child (or link) of a PRODUCER publish span",
    )


@pytest.mark.guarantee("TRC-HTTP-SEMCONV")
def test_trc_http_semconv(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    entry = obsconf_flow.expectation.services[0]
    servers = [s for s in obsconf_flow.spans if s.kind == "SERVER" and s.service == entry]
    assert servers, (
        f"the flow's trace has no {entry} SERVER span ({obsconf_flow.settled.describe_wait()})"
    )
    server = servers[0]
    expected: dict[str, str | int] = {
        "http.request.method": "POST",
        "http.route": "/api/users",
        "http.response.status_code": obsconf_flow.call.status,
    }
    seen = {key: server.attributes.get(key) for key in expected}
    if (status := seen.get("http.response.status_code")) is not None:
        seen["http.response.status_code"] = int(status)
    obsconf_evidence(
        CompareEvidence(
            check="server span attributes",
            query=server.describe(),
            expected=expected,
            seen=dict(server.attributes),
        )
    )
    assert seen == expected, (
        f"{server.describe()} attributes differ from the HTTP semantic "
        f"conventions: expected {expected}, seen {seen}"
    )


@pytest.mark.guarantee("TRC-MESSAGING-SEMCONV")
def test_trc_messaging_semconv(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    spans = _messaging_spans(obsconf_flow, "publish") + _messaging_spans(obsconf_flow, "consume")
    assert spans, "no messaging spans found in the flow"
    subjects = {h.subject for h in obsconf_flow.expectation.hops}
    bad = []
    for span in spans:
        system_attr = span.attributes.get("messaging.system")
        destination = span.attributes.get("messaging.destination.name")
        if system_attr != "nats" or destination not in subjects:
            bad.append(
                f"{span.describe()}: messaging.system={system_attr!r}, "
                f"messaging.destination.name={destination!r}"
            )
    obsconf_evidence(
        SpanEvidence(
            check="messaging attributes",
            seen=bad or "all conform",
            expected="messaging.system=nats, messaging.destination.name=<subject>",
        )
    )
    assert not bad, "messaging spans without the semantic-convention attributes:\n" + "\n".join(bad)


@pytest.mark.guarantee("TRC-SERVICE-NAME")
def test_trc_service_name(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    spans = flow_spans(obsconf_flow)
    names = {s.service for s in spans}
    expected = set(obsconf_flow.expectation.services)
    obsconf_evidence(
        CompareEvidence(
            check="service.name of the flow's spans",
            query=obsconf_flow.trace_id,
            expected=sorted(expected),
            seen=sorted(names),
        )
    )
    assert spans, "the flow produced no spans"
    assert names <= expected and obsconf_flow.expectation.services[0] in names, (
        f"spans carry service.name {sorted(names - expected) or sorted(names)}, expected only "
        f"{sorted(expected)}"
    )


@pytest.mark.guarantee("TRC-CHILD-AFTER-PARENT")
def test_trc_child_after_parent(obsconf_flow: Flow, obsconf_evidence: Recorder) -> None:
    check_findings(
        obsconf_flow,
        {"child-before-parent"},
        obsconf_evidence,
        "a child span starts before its parent",
    )


@pytest.mark.guarantee("TRC-ERROR-STATUS")
def test_trc_error_status(
    obsconf_system: System, obsconf_driver: Driver, obsconf_evidence: Recorder
) -> None:
    hook = obsconf_system.target.error_hook
    if hook is None:
        pytest.skip("the target declares no capabilities.error_hook answering 5xx")
    call = obsconf_driver.call("user", hook.method, hook.path)
    assert call.status >= 500, f"the error hook {hook.method} {hook.path} answered {call.status}"
    spans = poll_trace_ready(obsconf_system, call.trace_id)
    servers = [s for s in spans if s.kind == "SERVER"]
    obsconf_evidence(
        CompareEvidence(
            check="status of the 5xx server span",
            query=call.describe(),
            expected="ERROR",
            seen=[f"{s.describe()}: {s.status}" for s in servers],
        )
    )
    assert servers, f"no SERVER span in trace {call.trace_id} of {call.describe()}"
    assert all(s.status == "ERROR" for s in servers), (
        f"{call.describe()}: server span status is {servers[0].status}, expected ERROR"
    )
