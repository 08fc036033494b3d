"""PROP: W3C trace context and X-Request-ID cross every boundary: HTTP in, NATS out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from obsconf.conformance.checks import check_equal
from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.evidence import CompareEvidence, NatsEvidence, Recorder, TraceEvidence
from obsconf.conformance.nats_tap import TappedMessage
from obsconf.conformance.scenarios import (
    TRACESTATE,
    Flow,
    get_user,
    poll_trace_ready,
    server_traces_between,
)
from obsconf.conformance.system import System
from obsconf.conformance.traces.model import Span
from obsconf.conformance.w3c import traceparent_problem
from obsconf.stack.waiting import PollTimeout, poll

MALFORMED = "00-this-is-not-a-traceparent-01"
REQUEST_ID_HEADER = "X-Request-ID"
Continued = tuple[Call, list[Span]]  # a traced call, the server spans under its trace id


@pytest.fixture(scope="module")
def continued(obsconf_system: System) -> Continued:
    """A traced GET and the server spans found under the trace id the suite sent."""
    driver = obsconf_system.driver()
    call = get_user(driver, 1)
    driver.close()
    spans = poll_trace_ready(obsconf_system, call.sent_trace_id)
    return call, [s for s in spans if s.kind == "SERVER"]


@pytest.mark.guarantee("PROP-TRACEPARENT-CONTINUED")
def test_prop_traceparent_continued(
    obsconf_system: System, continued: Continued, obsconf_evidence: Recorder
) -> None:
    call, servers = continued
    obsconf_evidence(
        TraceEvidence(
            check="server span under the trace id sent",
            trace_id=call.trace_id or "",
            request=call.describe(),
        )
    )
    assert servers, (
        f"no server span under trace id {call.trace_id} sent in traceparent with "
        f"{call.describe()}: the incoming context was not continued "
        f"({obsconf_system.traces.trace_url(call.trace_id or '')})"
    )


@pytest.mark.guarantee("PROP-PARENT-IS-CALLER")
def test_prop_parent_is_caller(continued: Continued, obsconf_evidence: Recorder) -> None:
    call, servers = continued
    assert servers, f"no server span under the trace id sent with {call.describe()}"
    check_equal(
        "the server span's parent is the caller's span from traceparent",
        call.describe(),
        call.client_span_id,
        servers[0].parent_span_id,
        obsconf_evidence,
    )


def _messages(flow: Flow, subject: str) -> list[TappedMessage]:
    return [m for m in flow.messages if m.subject == subject]


def _message_problems(
    system: System, flow: Flow, problem_of: Callable[[dict[str, str]], str | None]
) -> list[str]:
    """`problem_of(headers)` for every message the flow published on each subject, prefixed
    with the subject; a subject with no message of the flow is a problem too."""
    problems = []
    for subject in system.target.subjects.values():
        messages = _messages(flow, subject)
        if not messages:
            problems.append(f"no message on {subject} was seen for the flow")
        problems += [
            f"{subject}: {problem}"
            for problem in (problem_of(m.headers) for m in messages)
            if problem is not None
        ]
    return problems


@pytest.mark.guarantee("PROP-NATS-HEADERS")
def test_prop_nats_headers(
    obsconf_system: System, obsconf_flow: Flow, obsconf_evidence: Recorder
) -> None:
    problems = _message_problems(
        obsconf_system,
        obsconf_flow,
        lambda headers: traceparent_problem(headers, list(obsconf_flow.traces)),
    )
    obsconf_evidence(
        NatsEvidence(
            check="traceparent in NATS message headers",
            expected=f"00-<a trace of the flow: {', '.join(obsconf_flow.traces)}>-<span>-01",
            seen=[f"{m.subject}: {m.headers}" for m in obsconf_flow.messages],
        )
    )
    assert not problems, "\n".join(problems)


@pytest.mark.guarantee("PROP-REQUEST-ID-ON-NATS")
def test_prop_request_id_on_nats(
    obsconf_system: System, obsconf_flow: Flow, obsconf_evidence: Recorder
) -> None:
    """The request's X-Request-ID rides on the messages of every hop, so the lines a consumer
    writes can be tied to the request that caused them even without a trace."""

    def problem_of(headers: dict[str, str]) -> str | None:
        seen = headers.get(REQUEST_ID_HEADER)
        if seen == obsconf_flow.call.request_id:
            return None
        other = next((k for k in headers if k.lower() == REQUEST_ID_HEADER.lower()), None)
        if seen is None and other is not None:
            return (
                f"no '{REQUEST_ID_HEADER}' header, but '{other}' ({headers[other]!r}): NATS "
                "header names are case-sensitive"
            )
        return f"{REQUEST_ID_HEADER} is {seen!r}, the request sent {obsconf_flow.call.request_id!r}"

    problems = _message_problems(obsconf_system, obsconf_flow, problem_of)
    obsconf_evidence(
        NatsEvidence(
            check="X-Request-ID in the headers of the flow's NATS messages",
            expected=obsconf_flow.call.request_id,
            seen=[
                f"{m.subject}: {m.headers.get(REQUEST_ID_HEADER)!r}" for m in obsconf_flow.messages
            ],
        )
    )
    assert not problems, "\n".join(problems)


@pytest.mark.guarantee("PROP-TRACESTATE-PASSED")
def test_prop_tracestate_passed(
    obsconf_system: System, obsconf_flow: Flow, obsconf_evidence: Recorder
) -> None:
    """The request's own message carries its tracestate; so does the message its consumer
    publishes when the consumer continues the trace (`parent`). Under `link` the consumer
    begins a trace of its own, which rightly starts with no tracestate."""
    subjects = [obsconf_system.target.subjects["user_created"]]
    if obsconf_system.target.consumer_relation == "parent":
        subjects.append(obsconf_system.target.subjects["order_created"])
    seen = {
        subject: [m.headers.get("tracestate") for m in _messages(obsconf_flow, subject)]
        for subject in subjects
    }
    missing = [subject for subject, states in seen.items() if not states]
    assert not missing, f"no {' / '.join(missing)} message was seen for the flow"
    check_equal(
        f"tracestate sent with the request, in the headers of the flow's {' and '.join(subjects)} "
        "messages",
        f"NATS subscription on {', '.join(subjects)}",
        {subject: [TRACESTATE] * len(states) for subject, states in seen.items()},
        seen,
        obsconf_evidence,
    )


@pytest.mark.guarantee("PROP-MALFORMED-NEW-TRACE")
def test_prop_malformed_new_trace(
    obsconf_system: System, obsconf_driver: Driver, obsconf_evidence: Recorder
) -> None:
    call = obsconf_driver.call(
        "user", "GET", "/api/users", traced=False, headers={"traceparent": MALFORMED}
    )
    obsconf_evidence(
        CompareEvidence(
            check="answer to a malformed traceparent",
            query=call.describe(),
            expected="2xx and a new trace",
            seen=call.status,
        )
    )
    assert 200 <= call.status < 300, (
        f"a malformed traceparent {MALFORMED!r} was answered with {call.status}: it must be "
        f"ignored (a new trace started), not rejected"
    )
    service = obsconf_system.names["user"]
    if call.trace_id:  # the service answered with traceresponse: look the new trace up
        spans = poll_trace_ready(obsconf_system, call.trace_id)
        assert any(s.kind == "SERVER" for s in spans), (
            f"traceresponse named trace {call.trace_id}, which holds no server span"
        )
        return

    try:
        poll(
            lambda: server_traces_between(obsconf_system, service, call.started, call.ended),
            until=bool,
            timeout=10,
            describe=f"a new {service} trace",
        )
    except PollTimeout:
        raise AssertionError(
            f"no new trace was started by {service} for {call.describe()} "
            f"with a malformed traceparent"
        ) from None


@pytest.mark.guarantee("PROP-REQUEST-ID-ECHOED")
def test_prop_request_id_echoed(obsconf_driver: Driver, obsconf_evidence: Recorder) -> None:
    given = obsconf_driver.call("user", "GET", "/api/users", request_id="obsconf-echo-check")
    check_equal(
        "X-Request-ID sent is echoed",
        given.describe(),
        "obsconf-echo-check",
        given.response_headers.get("x-request-id"),
        obsconf_evidence,
    )
    generated = obsconf_driver.call("user", "GET", "/api/users", request_id=None)
    assert generated.response_headers.get("x-request-id"), (
        f"{generated.describe()} sent no X-Request-ID and got none back: one should be generated"
    )
