"""TRC: HTTP server spans take their status from the response as the semantic conventions say.

OpenTelemetry semantic conventions, HTTP spans, "Status" (docs/http/http-spans.md):
"For HTTP status codes in the 4xx range span status MUST be left unset in case of
`SpanKind.SERVER` and MUST be set to `Error` in case of `SpanKind.CLIENT`." (later versions
relax the CLIENT half to SHOULD; the SERVER half stays MUST). A 4xx is the client's error, not
the server's: a server span marked ERROR for it buries real failures in error dashboards.
5xx -> ERROR is TRC-ERROR-STATUS.

"Attributes": `error.type` is "Conditionally Required If request has ended with an error", and
note [4]: "If response status code was sent or received and status indicates an error
according to HTTP span status definition, `error.type` SHOULD be set to the status code number
(represented as a string), an exception type (if thrown) or a component-specific error
identifier." A 5xx is such an error on a SERVER span: error.type must be there, in any of
those forms (TRC-SERVER-ERROR-TYPE).
"""

from __future__ import annotations

import pytest

from obsconf.conformance.driver import Call, Driver
from obsconf.conformance.evidence import CompareEvidence, Recorder
from obsconf.conformance.scenarios import get_user, poll_trace_ready
from obsconf.conformance.system import System
from obsconf.conformance.traces.model import Span

UNKNOWN_ID = 999_000_404


def _server_spans(system: System, call: Call) -> list[Span]:
    """The SERVER spans the called service recorded for `call`, once its trace has settled."""
    service = system.names[call.role]
    spans = poll_trace_ready(system, call.trace_id)
    return [s for s in spans if s.kind == "SERVER" and s.service == service]


def _client_errors(driver: Driver) -> list[Call]:
    """A 404 (unknown id) and a 422 (invalid payload), each checked for its status code."""
    not_found = get_user(driver, UNKNOWN_ID)
    invalid = driver.call("user", "POST", "/api/users", json={"name": "x", "email": "not-an-email"})
    assert not_found.status == 404, f"an unknown id should answer 404: {not_found.describe()}"
    assert invalid.status == 422, f"an invalid email should answer 422: {invalid.describe()}"
    return [not_found, invalid]


@pytest.mark.guarantee("TRC-SERVER-4XX-UNSET")
def test_trc_server_4xx_unset(
    obsconf_system: System, obsconf_driver: Driver, obsconf_evidence: Recorder
) -> None:
    problems = []
    for call in _client_errors(obsconf_driver):
        servers = _server_spans(obsconf_system, call)
        obsconf_evidence(
            CompareEvidence(
                check=f"status of the server span of a {call.status}",
                query=f"trace {call.trace_id}: {call.describe()}",
                expected="UNSET",
                seen=[f"{s.describe()}: {s.status} {s.status_message}".rstrip() for s in servers],
            )
        )
        if not servers:
            problems.append(
                f"{call.describe()}: no SERVER span of {obsconf_system.names[call.role]}"
            )
        problems += [
            f"{call.describe()}: {s.describe()} has status {s.status}"
            + (f" ({s.status_message!r})" if s.status_message else "")
            + ", expected UNSET (a 4xx is not a server error)"
            for s in servers
            if s.status != "UNSET"
        ]
    if problems:
        raise AssertionError("\n".join(problems))


@pytest.mark.guarantee("TRC-SERVER-ERROR-TYPE")
def test_trc_server_error_type(
    obsconf_system: System, obsconf_error_paths: list[Call], obsconf_evidence: Recorder
) -> None:
    failed = [call for call in obsconf_error_paths if call.status >= 500]
    if not failed:
        pytest.skip("the target declares no capabilities.error_hook answering 5xx")
    problems = []
    for call in failed:
        servers = _server_spans(obsconf_system, call)
        obsconf_evidence(
            CompareEvidence(
                check=f"error.type on the server span of a {call.status}",
                query=f"trace {call.trace_id}: {call.describe()}",
                expected="a non-empty error.type",
                seen=[
                    f"{s.describe()}: error.type={s.attributes.get('error.type')!r}"
                    for s in servers
                ],
            )
        )
        if not servers:
            problems.append(
                f"{call.describe()}: no SERVER span of {obsconf_system.names[call.role]}"
            )
        problems += [
            f"{call.describe()}: {s.describe()} has no error.type (the semantic conventions "
            f"require it when the request ended with an error: e.g. {str(call.status)!r})"
            for s in servers
            if not str(s.attributes.get("error.type") or "").strip()
        ]
    if problems:
        raise AssertionError("\n".join(problems))
