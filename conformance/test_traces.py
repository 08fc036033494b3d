"""TRC: one client request yields one unbroken trace through every hop."""

from __future__ import annotations

import pytest

from obsconf.conformance.checks import check_findings, flow_spans
from obsconf.conformance.scenarios import Flow, poll_trace_ready
from obsconf.conformance.system import System
from obsconf.conformance.traces.analysis import analyse_flow, counted_roots, is_consume, is_publish


@pytest.mark.guarantee("TRC-ONE-TRACE-PER-FLOW")
def test_trc_one_trace_per_flow(flow: Flow, evidence) -> None:
    check_findings(
        flow,
        {"consumer-root", "multiple-roots", "mixed-trace-ids"},
        evidence,
        "the flow's spans are split over several traces",
    )


@pytest.mark.guarantee("TRC-SINGLE-ROOT")
def test_trc_single_root(flow: Flow, evidence) -> None:
    check_findings(
        flow, {"multiple-roots", "consumer-root"}, evidence, "the flow has more than one root span"
    )
    roots = counted_roots(flow_spans(flow), flow.expectation)
    links = " (consume spans linked to their publish span do not count)" * (
        flow.expectation.consumer_relation == "link"
    )
    assert len(roots) == 1, f"expected exactly one root span{links}, found {len(roots)}: " + (
        ", ".join(s.describe() for s in roots) or f"none ({flow.settled.describe_wait()})"
    )
    root, entry = roots[0], flow.expectation.services[0]
    assert root.service == entry and root.kind == "SERVER", (
        f"the root should be the {entry} SERVER span, it is {root.describe()}"
    )


@pytest.mark.guarantee("TRC-NO-ORPHANS")
def test_trc_no_orphans(flow: Flow, evidence) -> None:
    check_findings(flow, {"orphan"}, evidence, "spans whose parent is not in the trace")


@pytest.mark.guarantee("TRC-CROSS-SERVICE-PATH")
def test_trc_cross_service_path(flow: Flow, evidence) -> None:
    check_findings(
        flow,
        {"missing-service", "service-order"},
        evidence,
        "the user-creation flow does not reach every service in order",
        findings=analyse_flow(flow.traces, flow.expectation),
    )


def _messaging_spans(flow: Flow, role: str) -> list:
    test = is_publish if role == "publish" else is_consume
    return [s for s in flow_spans(flow) if test(s)]


def _check_kind(flow: Flow, role: str, kind: str, evidence) -> None:
    """Every `role` (publish/consume) messaging span of the flow has `kind`."""
    spans = _messaging_spans(flow, role)
    name = "publish <subject>" if role == "publish" else "process <subject>"
    assert spans, f"no {role} span found in the flow (nothing named '{name}')"
    wrong = [s for s in spans if s.kind != kind]
    evidence(
        kind="spans", check=f"{role} span kinds", seen=[s.describe() for s in spans], expected=kind
    )
    assert not wrong, f"{role} spans that are not {kind}: " + "; ".join(s.describe() for s in wrong)


@pytest.mark.guarantee("TRC-PRODUCER-KIND")
def test_trc_producer_kind(flow: Flow, evidence) -> None:
    _check_kind(flow, "publish", "PRODUCER", evidence)


@pytest.mark.guarantee("TRC-CONSUMER-KIND")
def test_trc_consumer_kind(flow: Flow, evidence) -> None:
    _check_kind(flow, "consume", "CONSUMER", evidence)


@pytest.mark.guarantee("TRC-CONSUMER-PARENT-IS-PRODUCER")
def test_trc_consumer_parent_is_producer(flow: Flow, evidence) -> None:
    assert _messaging_spans(flow, "consume"), "no consume span found in the flow"
    check_findings(
        flow,
        {"consumer-parent-not-producer", "orphan", "wrong-kind"},
        evidence,
        "a consume span is not the child (or link) of a PRODUCER publish span",
    )


@pytest.mark.guarantee("TRC-HTTP-SEMCONV")
def test_trc_http_semconv(flow: Flow, evidence) -> None:
    entry = flow.expectation.services[0]
    servers = [s for s in flow.spans if s.kind == "SERVER" and s.service == entry]
    assert servers, f"the flow's trace has no {entry} SERVER span ({flow.settled.describe_wait()})"
    server = servers[0]
    expected = {
        "http.request.method": "POST",
        "http.route": "/api/users",
        "http.response.status_code": flow.call.status,
    }
    seen = {key: server.attributes.get(key) for key in expected}
    if seen.get("http.response.status_code") is not None:
        seen["http.response.status_code"] = int(seen["http.response.status_code"])
    evidence(
        kind="compare",
        check="server span attributes",
        query=server.describe(),
        expected=expected,
        seen=dict(server.attributes),
    )
    assert seen == expected, (
        f"{server.describe()} attributes differ from the HTTP semantic "
        f"conventions: expected {expected}, seen {seen}"
    )


@pytest.mark.guarantee("TRC-MESSAGING-SEMCONV")
def test_trc_messaging_semconv(flow: Flow, evidence) -> None:
    spans = _messaging_spans(flow, "publish") + _messaging_spans(flow, "consume")
    assert spans, "no messaging spans found in the flow"
    subjects = set(flow.expectation and [h.subject for h in flow.expectation.hops])
    bad = []
    for span in spans:
        system_attr = span.attributes.get("messaging.system")
        destination = span.attributes.get("messaging.destination.name")
        if system_attr != "nats" or destination not in subjects:
            bad.append(
                f"{span.describe()}: messaging.system={system_attr!r}, "
                f"messaging.destination.name={destination!r}"
            )
    evidence(
        kind="spans",
        check="messaging attributes",
        seen=bad or "all conform",
        expected="messaging.system=nats, messaging.destination.name=<subject>",
    )
    assert not bad, "messaging spans without the semantic-convention attributes:\n" + "\n".join(bad)


@pytest.mark.guarantee("TRC-SERVICE-NAME")
def test_trc_service_name(flow: Flow, evidence) -> None:
    spans = flow_spans(flow)
    names = {s.service for s in spans}
    expected = set(flow.expectation.services)
    evidence(
        kind="compare",
        check="service.name of the flow's spans",
        query=flow.trace_id,
        expected=sorted(expected),
        seen=sorted(names),
    )
    assert spans, "the flow produced no spans"
    assert names <= expected and flow.expectation.services[0] in names, (
        f"spans carry service.name {sorted(names - expected) or sorted(names)}, expected only "
        f"{sorted(expected)}"
    )


@pytest.mark.guarantee("TRC-CHILD-AFTER-PARENT")
def test_trc_child_after_parent(flow: Flow, evidence) -> None:
    check_findings(flow, {"child-before-parent"}, evidence, "a child span starts before its parent")


@pytest.mark.guarantee("TRC-ERROR-STATUS")
def test_trc_error_status(system: System, driver, evidence) -> None:
    hook = system.target.error_hook
    if hook is None:
        pytest.skip("the target declares no capabilities.error_hook answering 5xx")
    call = driver.call("user", hook.method, hook.path)
    assert call.status >= 500, f"the error hook {hook.method} {hook.path} answered {call.status}"
    spans = poll_trace_ready(system, call.trace_id)
    servers = [s for s in spans if s.kind == "SERVER"]
    evidence(
        kind="compare",
        check="status of the 5xx server span",
        query=call.describe(),
        expected="ERROR",
        seen=[f"{s.describe()}: {s.status}" for s in servers],
    )
    assert servers, f"no SERVER span in trace {call.trace_id} of {call.describe()}"
    assert all(s.status == "ERROR" for s in servers), (
        f"{call.describe()}: server span status is {servers[0].status}, expected ERROR"
    )
