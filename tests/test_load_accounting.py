"""obsconf.conformance.load's pure logic (account, collect): charging a flow's losses to stages,
the reconciliation, freshness percentiles, link following, and the freshness thresholds a
target may set."""

from __future__ import annotations

from pathlib import Path

import pytest

from obsconf.conformance.driver import Call
from obsconf.conformance.evidence import ReconciliationEvidence, ReconciliationRow
from obsconf.conformance.load.account import STAGES, Accounting, Freshness, _charge_merged, charge
from obsconf.conformance.load.collect import FlowAccount, _follow, _linking, _windows
from obsconf.conformance.load.send import Sent
from obsconf.conformance.nats_tap import TappedMessage
from obsconf.conformance.target import TargetError, load_target
from obsconf.conformance.traces.expectation import Expectation, Hop
from obsconf.conformance.traces.model import Link, Span
from obsconf.reports.evidence_html import render_evidence

USER, ORDER, INVENTORY = "user-service", "order-service", "inventory-service"
EXPECTATION = Expectation(
    services=(USER, ORDER, INVENTORY),
    hops=(Hop("user.created", USER, ORDER), Hop("order.created", ORDER, INVENTORY)),
)
TRACE = "a" * 32


def call(status: int = 201, trace_id: str = TRACE, request_id: str = "req-1") -> Call:
    return Call(
        role="user",
        method="POST",
        path="/api/users",
        route="/api/users",
        status=status,
        trace_id=trace_id,
        sent_trace_id=trace_id,
        client_span_id="c" * 16,
        request_id=request_id,
        sent_headers={},
        response_headers={},
        body={},
        started=100.0,
        ended=100.1,
    )


def span(name: str, kind: str, service: str, span_id: str, parent: str = "", **attrs) -> Span:
    return Span(TRACE, span_id, parent, name, kind, service, 1, 2, attrs)


def pub(subject: str, service: str, span_id: str) -> Span:
    attrs = {"messaging.system": "nats", "messaging.destination.name": subject}
    return span(f"publish {subject}", "PRODUCER", service, span_id, "1" * 16, **attrs)


def con(subject: str, service: str, span_id: str) -> Span:
    attrs = {"messaging.system": "nats", "messaging.destination.name": subject}
    return span(f"process {subject}", "CONSUMER", service, span_id, "2" * 16, **attrs)


def whole_spans() -> list[Span]:
    return [
        span("POST /api/users", "SERVER", USER, "1" * 16),
        pub("user.created", USER, "2" * 16),
        con("user.created", ORDER, "3" * 16),
        pub("order.created", ORDER, "4" * 16),
        con("order.created", INVENTORY, "5" * 16),
    ]


def flow(spans: list[Span], logged: tuple[str, ...] = (ORDER, INVENTORY), **kw) -> FlowAccount:
    account = FlowAccount(call(**kw), EXPECTATION, traces={TRACE: spans} if spans else {})
    account.logged = {s: 101.0 for s in logged}
    return account


def message(subject: str, request_id: str = "req-1") -> TappedMessage:
    return TappedMessage(subject, {"X-Request-ID": request_id}, b"{}", 100.0)


ON_NATS = [message("user.created"), message("order.created")]
CONSUMERS = [ORDER, INVENTORY]


def test_a_whole_flow_is_charged_nothing() -> None:
    assert charge(flow(whole_spans()), ON_NATS, CONSUMERS) == []


def test_a_failed_request_is_lost_at_http() -> None:
    assert charge(flow([], status=503), ON_NATS, CONSUMERS) == [("HTTP", "answered 503")]


def test_no_message_and_no_publish_span_is_lost_at_publish() -> None:
    spans = whole_spans()[:1]
    assert [s for s, _ in charge(flow(spans, logged=()), [], CONSUMERS)] == ["publish"]


def test_a_publish_span_without_a_message_is_lost_in_nats() -> None:
    spans = whole_spans()[:2]
    assert [s for s, _ in charge(flow(spans, logged=()), [], CONSUMERS)] == ["NATS"]


def test_a_message_nobody_processed_is_lost_at_consume() -> None:
    spans = whole_spans()[:2]
    assert [s for s, _ in charge(flow(spans, logged=()), ON_NATS, CONSUMERS)] == ["consume"]


def test_work_done_without_its_span_is_lost_at_the_exporter() -> None:
    spans = [s for s in whole_spans() if s.service != INVENTORY]
    lost = charge(flow(spans), ON_NATS, CONSUMERS)
    assert [s for s, _ in lost] == ["exporter"], lost
    assert INVENTORY in lost[0][1]


def test_a_consumer_without_lines_is_lost_on_the_log_path() -> None:
    lost = charge(flow(whole_spans(), logged=(ORDER,)), ON_NATS, CONSUMERS)
    assert lost == [("log path", f"no line of {INVENTORY} for the flow in the log store")]


def test_two_consume_spans_on_a_hop_are_charged_to_consume() -> None:
    spans = [*whole_spans(), con("order.created", INVENTORY, "6" * 16)]
    lost = charge(flow(spans), ON_NATS, CONSUMERS)
    assert lost == [("consume", "2 consume spans on order.created, expected 1")]


def test_without_a_tap_a_missing_consume_is_not_blamed_on_nats() -> None:
    spans = whole_spans()[:2]
    assert [s for s, _ in charge(flow(spans, logged=()), None, CONSUMERS)] == ["consume"]


def test_a_trace_in_two_flows_is_merged() -> None:
    flows = [flow(whole_spans()), flow(whole_spans(), request_id="req-2")]
    _charge_merged(flows)
    assert all(f.lost == [("merged", f"trace {TRACE} holds 2 flows")] for f in flows)


def test_reconciliation_counts_flows_per_stage() -> None:
    good, bad = flow(whole_spans()), flow([], status=500)
    bad.lost = [("HTTP", "answered 500")]
    sent = Sent([good.call, bad.call], [], 100.0, 100.2)
    accounting = Accounting(sent, [good, bad], [], Freshness({}, {}), 1.0, 3)
    rows = {r["stage"]: r for r in accounting.reconciliation()}
    assert list(rows) == list(STAGES)
    assert rows["HTTP"]["flows"] == 1 and "answered 500" in str(rows["HTTP"]["example"])
    assert accounting.whole() == 1
    assert "2 flows: 1 whole, 1 with something missing" in accounting.table()
    evidence = ReconciliationEvidence(
        check="flows accounted for",
        rows=tuple(ReconciliationRow.from_dict(row) for row in accounting.reconciliation()),
        table=accounting.table(),
        expected="2 whole flows",
        seen="1 whole",
    )
    html = render_evidence(evidence, None)
    assert "<td>HTTP</td><td>1</td>" in html


def test_freshness_percentiles() -> None:
    fresh = Freshness({"traces": [float(i) for i in range(1, 101)]}, {"traces": 0.5})
    assert fresh.percentile("traces", 50) == 50.0
    assert fresh.percentile("traces", 99) == 99.0
    assert fresh.percentile("logs", 50) is None
    assert fresh.summary()["traces"]["n"] == 100
    assert "logs: not observed" in fresh.describe()


def test_follow_collects_linked_traces_transitively() -> None:
    main = [span("root", "SERVER", USER, "1" * 16)]
    b = [
        Span(
            "b" * 32,
            "2" * 16,
            "",
            "process",
            "CONSUMER",
            ORDER,
            1,
            2,
            links=(Link(TRACE, "1" * 16),),
        )
    ]
    c = [
        Span(
            "c" * 32,
            "3" * 16,
            "",
            "process",
            "CONSUMER",
            INVENTORY,
            1,
            2,
            links=(Link("b" * 32, "2" * 16),),
        )
    ]
    other = [Span("d" * 32, "4" * 16, "", "x", "SERVER", USER, 1, 2)]
    traces = {TRACE: main, "b" * 32: b, "c" * 32: c, "d" * 32: other}
    assert set(_follow(TRACE, traces, _linking(traces))) == {TRACE, "b" * 32, "c" * 32}


def target_yaml(tmp_path: Path, capabilities: str) -> Path:
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\nservices:\n"
        + "".join(f"  {r}: {{url: 'http://127.0.0.1:1'}}\n" for r in ("user", "order", "inventory"))
        + f"backends: {{prometheus: 'http://127.0.0.1:2', logs: 'http://127.0.0.1:3', "
        f"traces: 'http://127.0.0.1:4'}}\ncapabilities:\n{capabilities}"
    )
    return path


def test_freshness_thresholds_default_from_the_flush_interval(tmp_path: Path) -> None:
    target = load_target(target_yaml(tmp_path, "  span_flush_interval: 0.2\n"))
    assert target.freshness_s == {"metrics": 3.0, "logs": 10.0, "traces": pytest.approx(5.0)}


def test_a_target_sets_freshness_thresholds(tmp_path: Path) -> None:
    target = load_target(target_yaml(tmp_path, "  freshness_s: {traces: 30}\n"))
    assert target.freshness_s["traces"] == 30.0
    with pytest.raises(TargetError, match="freshness_s.logs"):
        load_target(target_yaml(tmp_path, "  freshness_s: {logs: -1}\n"))
    with pytest.raises(TargetError, match="freshness_s.bogus"):
        load_target(target_yaml(tmp_path, "  freshness_s: {bogus: 1}\n"))


def test_windows_cover_the_incomplete_flows_merged_when_close() -> None:
    flows = [flow([]) for _ in range(3)]
    for account, (started, ended) in zip(flows, [(0.0, 0.2), (0.5, 0.9), (5.0, 5.1)], strict=True):
        account.call.started, account.call.ended = started, ended
    assert [(round(a, 2), round(b, 2)) for a, b in _windows(flows)] == [(-0.05, 0.95), (4.95, 5.15)]


def test_windows_hold_at_most_a_page_of_flows() -> None:
    flows = [flow([]) for _ in range(5)]
    for i, account in enumerate(flows):
        account.call.started, account.call.ended = i * 0.1, i * 0.1 + 0.05
    assert len(_windows(flows, most=2)) == 3
