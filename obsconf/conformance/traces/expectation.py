"""What an unbroken flow looks like for a target: its services in order, its NATS hops."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Hop:
    """A NATS hop of the expected path: `producer_service` publishes on `subject`."""

    subject: str
    producer_service: str
    consumer_service: str


@dataclass(frozen=True)
class Expectation:
    """What an unbroken flow looks like for a target."""

    services: tuple[str, ...]  # in path order
    hops: tuple[Hop, ...] = ()
    # "link": a consume span may root its own trace if it links to a PRODUCER span.
    consumer_relation: Literal["parent", "link"] = "parent"
    tolerance_ms: float = 50
    # Span ids the caller owns (a traceparent the test sent): parents that are never exported.
    external_parents: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.consumer_relation not in ("parent", "link"):
            raise ValueError(
                f"consumer_relation must be 'parent' or 'link', not {self.consumer_relation!r}"
            )

    def hop_into(self, service: str) -> Hop | None:
        return next((h for h in self.hops if h.consumer_service == service), None)

    def hop_between(self, producer: str, consumer: str) -> Hop | None:
        return next(
            (
                h
                for h in self.hops
                if (h.producer_service, h.consumer_service) == (producer, consumer)
            ),
            None,
        )


NO_EXPECTATION = Expectation(services=())  # no path to check: only the trace's own shape


def expectation_from_target(target: Any, tolerance_ms: float = 50) -> Expectation:
    """The expectation of a `obsconf.conformance.target.Target`: user → order → inventory over the
    user_created and order_created subjects, with the target's consumer relation."""
    user, order, inventory = (target.service(role).name for role in ("user", "order", "inventory"))
    return Expectation(
        services=(user, order, inventory),
        hops=(
            Hop(target.subjects["user_created"], user, order),
            Hop(target.subjects["order_created"], order, inventory),
        ),
        consumer_relation=target.consumer_relation,
        tolerance_ms=tolerance_ms,
    )
