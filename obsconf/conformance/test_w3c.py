"""PROP: W3C Trace Context (Level 1) on HTTP, case by case, and the sampled flag.

The traceparent cases follow the recommendation's parsing rules and the cases the W3C
trace-context test suite grades: a valid header (any header-name case, a future version laid
out like 00, whitespace around the value) is continued; anything else restarts the trace and
never fails the request. A case is *continued* when the request's SERVER span is in the sent
trace with the sent parent id, *restarted* when it is in another trace (named by the W3C
`traceresponse` header, else found in the trace store among the traces the service began
while the request was in flight). The tracestate cases are seen in the headers of the
`user.created` message a `POST /api/users` publishes.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from obsconf.conformance.driver import Call, Driver, trace_of
from obsconf.conformance.evidence import CompareEvidence, NatsEvidence, Recorder
from obsconf.conformance.nats_tap import NatsTap, TappedMessage
from obsconf.conformance.scenarios import (
    create_user,
    fetch_trace,
    poll_trace_ready,
    server_traces_between,
)
from obsconf.conformance.system import System
from obsconf.conformance.traces.model import Span
from obsconf.conformance.w3c import (
    CONTINUE,
    DISCARD,
    KEEP,
    RESTART,
    TP,
    TRACEPARENT_CASES,
    TRACESTATE_CASES,
    TS,
    VALID_ONLY,
    Ids,
    Member,
    TraceparentCase,
    TracestateCase,
    discarded_problem,
    kept_problem,
    list_problem,
    members,
)
from obsconf.stack.waiting import PollTimeout, poll

PATH = "/api/users"
MESSAGE_TIMEOUT = 10.0

# --- running the cases --------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One case as sent: its ids, header fields and the answer."""

    ids: Ids
    fields: list[tuple[str, str]]
    call: Call

    def request(self, method: str = "GET") -> str:
        lines = [f"{method} {self.call.path}"]
        lines += [f"{n}: {v!r}" if v != v.strip() or not v else f"{n}: {v}" for n, v in self.fields]
        return "\n".join(lines)

    @property
    def named_traces(self) -> list[str]:
        """The trace ids the fields name (those a lenient parser may continue)."""
        text = " ".join(v.lower() for _, v in self.fields)
        return [t for t in (self.ids.t, self.ids.t2) if t in text]


def send_raw(system: System, role: str, path: str, fields: list[tuple[str, str]]) -> Call:
    """GET over a plain HTTP/1.1 connection, the header fields written as given (the call
    goes into the run's journal like a driver's)."""
    base = urlsplit(system.urls[role])
    connection = http.client.HTTPConnection(base.hostname or "", base.port, timeout=10)
    try:
        started = time.time()
        connection.putrequest("GET", base.path.rstrip("/") + path)
        for name, value in fields:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        ended = time.time()
    finally:
        connection.close()
    headers = {k.lower(): v for k, v in response.getheaders()}
    call = Call(
        role=role,
        method="GET",
        path=path,
        route=path,
        status=response.status,
        trace_id=trace_of(headers, None),
        sent_trace_id=None,
        client_span_id=None,
        request_id=None,
        sent_headers=dict(fields),
        sent_fields=tuple(fields),
        response_headers=headers,
        body=body,
        started=started,
        ended=ended,
    )
    system.journal.append(call)
    return call


def _servers(spans: Iterable[Span], service: str) -> list[Span]:
    return [s for s in spans if s.kind == "SERVER" and s.service == service]


def _landed(system: System, service: str, sent: Sent) -> dict[str, list[Span]]:
    """The traces other than the named ones holding this request's SERVER span."""
    named = sent.named_traces
    told = sent.call.trace_id
    if told and told not in named:
        servers = _servers(fetch_trace(system, told), service)
        if servers:
            return {told: servers}
    window = server_traces_between(system, service, sent.call.started, sent.call.ended)
    return {tid: _servers(spans, service) for tid, spans in window.items() if tid not in named}


def traceparent_outcome(system: System, service: str, sent: Sent) -> tuple[str, str]:
    """(verdict, detail): CONTINUE, RESTART or what happened instead."""
    status = sent.call.status
    if not 200 <= status < 300:
        return f"answered {status}", "a traceparent never fails a request"
    for trace_id in sent.named_traces:
        for span in _servers(fetch_trace(system, trace_id), service):
            where = f"server span {span.span_id} in trace {trace_id}, parent {span.parent_span_id}"
            if span.parent_span_id in sent.ids.parents:
                return CONTINUE, where
            return "continued with another parent", where
    for trace_id, spans in _landed(system, service, sent).items():
        span = spans[0]
        where = f"server span {span.span_id} in trace {trace_id}, parent {span.parent_span_id}"
        if span.parent_span_id and span.parent_span_id in sent.ids.parents:
            return "new trace id under the sent parent", where
        return RESTART, where
    return "no server span found", f"traceresponse {sent.call.trace_id}, none in the window"


@dataclass(frozen=True)
class TraceparentSeen:
    case: TraceparentCase
    sent: Sent
    verdict: str
    detail: str


@pytest.fixture(scope="module")
def traceparent_seen(obsconf_system: System) -> list[TraceparentSeen]:
    """Every traceparent case sent to the user service, judged once the store holds the spans
    of a traced request sent after them all."""
    driver = obsconf_system.driver()
    sent = []
    for case in TRACEPARENT_CASES:
        ids = Ids.fresh()
        fields = case.render(ids)
        call = (
            send_raw(obsconf_system, "user", PATH, fields)
            if case.raw
            else driver.call("user", "GET", PATH, traced=False, headers=fields)
        )
        sent.append((case, Sent(ids, fields, call)))
    last = driver.call("user", "GET", PATH)
    driver.close()
    poll_trace_ready(obsconf_system, last.trace_id)
    service = obsconf_system.names["user"]
    return [
        TraceparentSeen(case, s, *traceparent_outcome(obsconf_system, service, s))
        for case, s in sent
    ]


@pytest.mark.guarantee("PROP-W3C-TRACEPARENT")
def test_prop_w3c_traceparent(
    traceparent_seen: list[TraceparentSeen], obsconf_evidence: Recorder
) -> None:
    wrong = []
    for seen in traceparent_seen:
        obsconf_evidence(
            CompareEvidence(
                check=f"traceparent, {seen.case.name} ({seen.case.clause})",
                query=f"{seen.sent.request()}\n-> {seen.sent.call.status}; {seen.detail}",
                expected=seen.case.required,
                seen=seen.verdict,
            )
        )
        if seen.verdict != seen.case.required:
            fields = "; ".join(f"{n}: {v!r}" for n, v in seen.sent.fields)
            wrong.append(
                f"{seen.case.name}: sent {fields} -> required {seen.case.required}, "
                f"seen {seen.verdict} ({seen.detail})"
            )
    assert not wrong, (
        f"{len(wrong)} of {len(traceparent_seen)} traceparent cases not handled as W3C Trace "
        "Context requires:\n" + "\n".join(wrong)
    )


# --- tracestate -------------------------------------------------------------------------


@dataclass(frozen=True)
class TracestateSeen:
    case: TracestateCase
    sent: Sent
    message: TappedMessage | None  # the user.created the request published

    @property
    def out(self) -> list[Member]:
        return members(
            [self.message.headers[TS]] if self.message and TS in self.message.headers else []
        )

    def request(self) -> str:
        headers = self.message.headers if self.message else {}
        got = f"user.created traceparent {headers.get(TP)!r}, tracestate {headers.get(TS)!r}"
        return f"{self.sent.request('POST')}\n-> {self.sent.call.status}; {got}"


def _email(call: Call) -> str:
    return str(call.body.get("email", "")) if isinstance(call.body, dict) else ""


def _published(messages: list[TappedMessage], sent: list[Sent]) -> dict[str, TappedMessage]:
    """The tapped message of each created user, by email."""
    wanted = {_email(s.call) for s in sent} - {""}
    found = {}
    for message in messages:
        text = message.data.decode("utf-8", "replace")
        found.update({email: message for email in wanted if email in text})
    return found


def await_published(tap: NatsTap, sent: list[Sent]) -> dict[str, TappedMessage]:
    """The messages of every created user (or those seen by the deadline)."""
    created = sum(1 for s in sent if _email(s.call))
    try:
        return poll(
            lambda: _published(tap.snapshot(), sent),
            until=lambda found: len(found) >= created,
            timeout=MESSAGE_TIMEOUT,
            describe=f"{created} user.created messages",
        )
    except PollTimeout:
        return _published(tap.snapshot(), sent)


def _require_nats(system: System) -> str:
    if not system.nats_url:
        pytest.skip("the target names no NATS backend: tracestate is seen in message headers")
    return system.target.subjects["user_created"]


@pytest.fixture(scope="module")
def tracestate_seen(obsconf_system: System) -> list[TracestateSeen]:
    """Every tracestate case sent with a POST /api/users, with the user.created it caused."""
    subject = _require_nats(obsconf_system)
    driver = obsconf_system.driver()
    sent = []
    with NatsTap(obsconf_system.nats_url or "", [subject]) as tap:
        for case in TRACESTATE_CASES:
            ids = Ids.fresh()
            fields = case.render(ids)
            sent.append(Sent(ids, fields, create_user(driver, traced=False, headers=fields)))
        published = await_published(tap, sent)
    driver.close()
    return [
        TracestateSeen(case, s, published.get(_email(s.call)))
        for case, s in zip(TRACESTATE_CASES, sent, strict=True)
    ]


def continued_problem(seen: TracestateSeen) -> str | None:
    """Why the message does not carry the request's sent trace (a valid traceparent), or None."""
    header = seen.message.headers.get(TP, "") if seen.message else ""
    if not header.startswith(f"00-{seen.sent.ids.t}-"):
        return f"user.created traceparent {header!r} is not in the sent trace {seen.sent.ids.t}"
    return None


def tracestate_problem(seen: TracestateSeen) -> str | None:
    """What the MUST rules find wrong in one case, or None."""
    if not 200 <= seen.sent.call.status < 300:
        return f"answered {seen.sent.call.status}"
    if seen.message is None:
        return "no user.created message was seen"
    if seen.case.continues and (problem := continued_problem(seen)):
        return problem
    sent = members(v for n, v in seen.sent.fields if n == TS)
    if seen.case.required == KEEP:
        return kept_problem(sent, seen.out)
    if seen.case.required == DISCARD:
        return discarded_problem(sent, seen.out)
    return None


Problem = Callable[[TracestateSeen], str | None]
Rule = Callable[[TracestateCase], tuple[str, str]]


def _judge(
    seen_all: list[TracestateSeen], problem_of: Problem, rule: Rule, evidence: Recorder
) -> list[str]:
    """Record each case's evidence; the problems found, one paragraph per case."""
    wrong = []
    for seen in seen_all:
        problem = problem_of(seen)
        required, clause = rule(seen.case)
        evidence(
            NatsEvidence(
                check=f"tracestate, {seen.case.name} ({clause})",
                query=seen.request(),
                expected=required,
                seen=problem or required,
            )
        )
        if problem:
            wrong.append(f"{seen.case.name}: {problem}\n  {seen.request()}".replace("\n", "\n  "))
    return wrong


@pytest.mark.guarantee("PROP-W3C-TRACESTATE")
def test_prop_w3c_tracestate(
    tracestate_seen: list[TracestateSeen], obsconf_evidence: Recorder
) -> None:
    wrong = _judge(tracestate_seen, tracestate_problem, lambda case: case.must, obsconf_evidence)
    assert not wrong, "tracestate not handled as W3C Trace Context requires:\n" + "\n".join(wrong)


@pytest.mark.guarantee("PROP-W3C-TRACESTATE-INVALID")
def test_prop_w3c_tracestate_invalid(
    tracestate_seen: list[TracestateSeen], obsconf_evidence: Recorder
) -> None:
    def problem_of(seen: TracestateSeen) -> str | None:
        if seen.message is None:
            return "no user.created message was seen"
        problem = list_problem(seen.out)
        return f"an invalid tracestate was passed on: {problem}" if problem else None

    invalid = [s for s in tracestate_seen if s.case.required == VALID_ONLY]
    wrong = _judge(invalid, problem_of, lambda case: (case.required, case.clause), obsconf_evidence)
    assert not wrong, "an invalid tracestate was passed on:\n" + "\n".join(wrong)


# --- sampled flag -----------------------------------------------------------------------


@pytest.mark.guarantee("PROP-SAMPLED-FLAG")
def test_prop_sampled_flag(
    obsconf_system: System, obsconf_driver: Driver, obsconf_evidence: Recorder
) -> None:
    subject = _require_nats(obsconf_system)
    ids = Ids.fresh()
    unsampled_header = f"00-{ids.t}-{ids.p}-00"
    with NatsTap(obsconf_system.nats_url or "", [subject]) as tap:
        unsampled = create_user(obsconf_driver, traced=False, headers={TP: unsampled_header})
        control = create_user(
            obsconf_driver
        )  # sampled, sent right after: once it is stored, all is
        sent = [Sent(ids, [(TP, unsampled_header)], unsampled), Sent(ids, [], control)]
        published = await_published(tap, sent)
    poll_trace_ready(obsconf_system, control.trace_id)
    spans = fetch_trace(obsconf_system, ids.t)
    message = published.get(_email(unsampled))
    header = message.headers.get(TP, "") if message else None
    problems = []
    if not 200 <= unsampled.status < 300:
        problems.append(f"{unsampled.describe()}: an unsampled request must still succeed")
    if spans:
        problems.append(
            f"{len(spans)} span(s) exported under the unsampled trace {ids.t}: "
            + ", ".join(s.describe() for s in spans[:5])
        )
    if header is None:
        problems.append(f"no {subject} message was seen for {unsampled.describe()}")
    elif not re.fullmatch(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", header) or (
        int(header[-2:], 16) & 1
    ):
        problems.append(f"{subject} traceparent {header!r} does not carry the sampled flag off")
    obsconf_evidence(
        NatsEvidence(
            check="a request sent with the sampled flag off (flags 00) stays unsampled",
            query=f"POST {PATH}\ntraceparent: {unsampled_header}\n-> {unsampled.status}; "
            f"{subject} traceparent {header!r}",
            expected={"spans exported": 0, f"{subject} traceparent flags": "00"},
            seen={
                "spans exported": len(spans),
                f"{subject} traceparent flags": (header or "")[-2:],
            },
        )
    )
    assert not problems, "\n".join(problems)
