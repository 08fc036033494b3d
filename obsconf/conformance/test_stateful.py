"""Random call sequences (hypothesis): whatever the order and payloads, the request counter
stays exact and every call's flow, once settled, has one root and no orphan."""

from __future__ import annotations

import secrets
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, rule, run_state_machine_as_test

from obsconf.conformance.driver import Call
from obsconf.conformance.metrics import (
    Key,
    await_scrape_after,
    delta,
    expected_requests,
    format_counts,
    selector,
    snapshot,
)
from obsconf.conformance.scenarios import settle_calls
from obsconf.conformance.system import System
from obsconf.conformance.traces.rules import analyse_flow

NAMES = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40).filter(
    str.strip
)
LOCAL_PARTS = st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True)
BAD_EMAILS = st.sampled_from(["", "no-at-sign", "a@", "@b.c", "x" * 400])


def _machine(system: System, check: str) -> type[RuleBasedStateMachine]:
    """A state machine of random calls; its teardown checks `counts` or `traces`."""
    labels = [system.target.labels[k] for k in ("method", "route", "status")]

    class CallSequences(RuleBasedStateMachine):
        users = Bundle("users")

        def __init__(self) -> None:
            super().__init__()
            self.driver = system.driver()
            now = time.time()
            for name in system.names.values():
                await_scrape_after(system.prometheus, name, now)
            self.before = {role: self._counts(role) for role in system.names}

        def _counts(self, role: str) -> Counter[Key]:
            series = selector(system.target, system.target.metrics["requests"], system.names[role])
            return snapshot(system.prometheus, series, labels)

        @rule(target=users, name=NAMES, local=LOCAL_PARTS)
        def create_user(self, name: str, local: str) -> int:
            email = f"{local}-{secrets.token_hex(4)}@example.com"
            call = self.driver.call(
                "user", "POST", "/api/users", json={"name": name, "email": email}
            )
            assert call.status in (201, 422), f"{call.describe()}: {call.body}"
            return call.body.get("id", 0) if call.status == 201 else 0

        @rule(email=BAD_EMAILS)
        def create_invalid_user(self, email: str) -> None:
            call = self.driver.call(
                "user", "POST", "/api/users", json={"name": "n", "email": email}
            )
            assert call.status == 422, f"{call.describe()}: {call.body}"
            assert "email" in str(call.body), f"422 should name the field: {call.body}"

        @rule(user=users)
        def get_user(self, user: int) -> None:
            call = self.driver.call("user", "GET", f"/api/users/{user}", route="/api/users/{id}")
            assert call.status in (200, 404), call.describe()

        @rule(unknown=st.integers(min_value=900_000_000, max_value=999_999_999))
        def get_unknown_user(self, unknown: int) -> None:
            call = self.driver.call("user", "GET", f"/api/users/{unknown}", route="/api/users/{id}")
            assert call.status == 404, call.describe()

        @rule(qty=st.integers(min_value=1, max_value=50))
        def receive_stock(self, qty: int) -> None:
            call = self.driver.call(
                "inventory",
                "POST",
                "/api/inventory",
                json={"sku": f"SKU-{secrets.token_hex(3)}", "qty": qty, "warehouse": "main"},
            )
            assert call.status == 201, call.describe()

        def teardown(self) -> None:
            try:
                self._check()
            finally:
                self.driver.close()

        def _check(self) -> None:
            calls = self.driver.calls
            if not calls:
                return
            if check == "counts":
                self._check_counts(calls)
            else:
                self._check_traces(calls)

        def _check_counts(self, calls: list[Call]) -> None:
            ended = max(c.ended for c in calls)
            for role, name in system.names.items():
                await_scrape_after(system.prometheus, name, ended)
                expected = expected_requests(calls, role)
                seen = delta(self.before[role], self._counts(role))
                assert seen == expected, (
                    f"{name}: counted {format_counts(seen)}, sent {format_counts(expected)}"
                )

        def _check_traces(self, calls: list[Call]) -> None:
            """Judged only once every call's flow has settled (see `settle`)."""
            for settled in settle_calls(system, calls):
                broken = [
                    f
                    for f in analyse_flow(settled.traces, settled.expectation)
                    if f.code in ("orphan", "multiple-roots", "no-spans")
                ]
                assert not broken, (
                    f"trace {settled.trace_id} ({settled.describe_wait()}): {broken[0].message}"
                )

    return CallSequences


@pytest.mark.parametrize(
    "check",
    [
        pytest.param("counts", marks=pytest.mark.guarantee("MET-REQUESTS-EXACT")),
        pytest.param("traces", marks=pytest.mark.guarantee("TRC-NO-ORPHANS")),
    ],
)
def test_random_call_sequences(obsconf_system: System, check: str) -> None:
    """One guarantee per run, so a metrics fault never reads as a trace failure (or back)."""
    run_state_machine_as_test(
        _machine(obsconf_system, check),
        settings=settings(
            max_examples=2,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            # No shrinking: each replay of a failing sequence costs a settle wait per call, and
            # a verdict that needs minutes of replays is worse than the unshrunk sequence.
            phases=[Phase.explicit, Phase.generate],
        ),
    )
