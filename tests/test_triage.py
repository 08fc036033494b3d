"""A backend of the harness that does not answer makes a guarantee INCOMPLETE, never FAIL.

The outcome in the verdict, the fold and every output; then `Triage` against real sockets: one
that answers, one that accepts and never answers (a frozen process), one nothing listens on (a
killed one).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from obsconf.conformance.catalog import catalog
from obsconf.conformance.clients.errors import BackendError, BackendUnreachable
from obsconf.conformance.clients.traces import TraceNotFound
from obsconf.conformance.results import GuaranteeResult, Outcome, Record, RunResults, fold, verdict
from obsconf.conformance.triage import Backend, Triage
from obsconf.reports.html import render_report
from obsconf.reports.junit import build_junit

FROZEN = (
    "could not be judged, a backend of the harness did not answer: the log store "
    "(victorialogs) at http://127.0.0.1:9428 did not answer GET http://127.0.0.1:9428/health "
    "within 2 s\n(not the implementation's failure; the check said: order-service wrote no line)"
)


def result(gid: str, outcome: str, level: str = "MUST", message: str = "") -> GuaranteeResult:
    return GuaranteeResult(gid, level, gid.split("-")[0], "statement", outcome, message=message)


# --- the outcome in the verdict, the fold and the outputs ---------------------------------


@pytest.mark.parametrize(
    ("guarantees", "stopped", "status", "says"),
    [
        (
            [result("LOG-A", "incomplete", message=FROZEN), result("MET-B", "passed")],
            None,
            "INCOMPLETE",
            "1 of 2 MUST could not be judged (LOG-A): could not be judged, a backend of the "
            "harness did not answer: the log store (victorialogs) at http://127.0.0.1:9428",
        ),
        (  # a real failure still fails the run, and the unjudged one is noted
            [result("LOG-A", "incomplete", message=FROZEN), result("MET-B", "failed")],
            None,
            "FAIL",
            "1 of 2 MUST guarantees failed; 1 MUST could not be judged (LOG-A)",
        ),
        (  # a SHOULD that could not be judged is reported only
            [result("LOG-S", "incomplete", "SHOULD", FROZEN), result("MET-B", "passed")],
            None,
            "PASS",
            "1 SHOULD could not be judged (LOG-S)",
        ),
        (
            [result("LOG-A", "incomplete", message=FROZEN)],
            "interrupted",
            "INCOMPLETE",
            "1 MUST could not be judged (LOG-A); the run stopped early",
        ),
    ],
)
def test_verdict_of_a_guarantee_that_could_not_be_judged(
    guarantees: list[GuaranteeResult], stopped: str | None, status: str, says: str
) -> None:
    outcome = verdict(guarantees, stopped)
    assert outcome.status == status, outcome.reason
    assert says in outcome.reason
    assert not Outcome.INCOMPLETE.failing


def test_fold_a_real_failure_outweighs_incomplete_and_incomplete_outweighs_a_pass() -> None:
    records = [
        Record("t.py::a", ("LOG-JSON-LINES",), "call", Outcome.INCOMPLETE, FROZEN),
        Record("t.py::b", ("LOG-JSON-LINES",), "call", Outcome.PASSED),
        Record("t.py::c", ("MET-TARGET-UP",), "call", Outcome.INCOMPLETE, FROZEN),
        Record("t.py::d", ("MET-TARGET-UP",), "call", Outcome.FAILED, "down"),
    ]
    folded = {g.id: g for g in fold(records, catalog())}
    assert (folded["LOG-JSON-LINES"].outcome, folded["LOG-JSON-LINES"].message) == (
        "incomplete",
        FROZEN,
    )
    assert folded["MET-TARGET-UP"].outcome == "failed"


def test_every_output_shows_it_and_results_round_trip() -> None:
    results = RunResults(
        guarantees=(
            result("LOG-JSON-LINES", "incomplete", message=FROZEN),
            result("MET-TARGET-UP", "passed"),
        ),
        target="t",
    )
    data = json.loads(json.dumps(results.to_dict(), default=str))
    assert data["verdict"]["status"] == "INCOMPLETE" and data["verdict"]["exit_code"] == 6
    assert data["guarantees"][0]["outcome"] == "incomplete"
    assert RunResults.from_dict(data) == results
    assert results.tally == "1 passed, 0 failed, 1 incomplete, 0 skipped"
    assert "incomplete" not in RunResults(guarantees=(result("A-B", "passed"),)).tally

    root = build_junit(results).getroot()
    assert (root.get("errors"), root.get("failures")) == ("1", "0")
    case = root.find(".//testcase[@name='LOG-JSON-LINES']")
    assert case is not None and case.find("failure") is None
    error = case.find("error")
    assert error is not None and "could not be judged" in error.get("message", "")
    assert "http://127.0.0.1:9428" in (error.text or "")
    ET.fromstring(ET.tostring(root))  # still a readable document

    page = render_report(results)
    assert '<span class="badge incomplete">INCOMPLETE</span>' in page
    assert "the log store (victorialogs) at http://127.0.0.1:9428" in page


# --- probing real sockets -------------------------------------------------------------------


class _Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ready() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def frozen() -> Iterator[str]:
    """A listening socket nobody accepts on: connects, never answers (a SIGSTOPped store)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def dead() -> str:
    with socket.socket() as sock:  # a port just freed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_backends_that_answer_leave_the_failure_to_the_implementation(ready: str) -> None:
    triage = Triage([Backend("Prometheus", ready, f"{ready}/-/ready")], timeout=0.5)
    assert triage.verdict(AssertionError("no spans"), "no spans") is None
    # an answer that is not the one asked for may be the implementation's doing
    assert triage.verdict(TraceNotFound("trace t not found"), "no spans") is None
    assert triage.verdict(BackendError("2 series, expected one"), "two") is None


def test_a_frozen_backend_is_named_with_its_url_and_probed_once_a_ttl(
    ready: str, frozen: str
) -> None:
    store = Backend("the log store (victorialogs)", frozen, f"{frozen}/health")
    triage = Triage([Backend("Prometheus", ready, f"{ready}/-/ready"), store], timeout=0.3, ttl=60)
    said = triage.verdict(AssertionError("wrote no line"), "order-service wrote no line")
    assert said == (
        "could not be judged, a backend of the harness did not answer: the log store "
        f"(victorialogs) at {frozen} did not answer GET {frozen}/health within 0.3 s\n"
        "(not the implementation's failure; the check said: order-service wrote no line)"
    )
    for _ in range(11):  # the next failures reuse the answers
        assert triage.verdict(AssertionError("x"), "x") is not None
    assert triage.probes == 2


def test_a_killed_backend_and_an_unanswered_query_in_the_chain(ready: str, dead: str) -> None:
    triage = Triage([Backend("the trace store (jaeger)", dead, f"{dead}/api/services")])
    said = triage.verdict(None, "No spans were found for this trace")
    assert said is not None and f"the trace store (jaeger) at {dead} could not be reached" in said

    answering = Triage([Backend("Prometheus", ready, f"{ready}/-/ready")])
    try:
        try:
            raise BackendUnreachable("PromQL 'up': cannot reach http://p/api/v1/query: timed out")
        except BackendUnreachable as error:
            raise AssertionError("target down") from error
    except AssertionError as error:
        said = answering.verdict(error, "target down")
    assert said is not None
    assert "a query went unanswered: PromQL 'up': cannot reach http://p/api/v1/query" in said
