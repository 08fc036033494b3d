"""Outbox relay: publishes events that were stored with their data but not yet published.

The write path stores the event together with the data it announces (same transaction, or
same document) and then tries to publish at once. If NATS is down the event stays pending;
this loop publishes it when NATS is back, under the trace context stored with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from obsconf.reference_services import faults
from obsconf.reference_services.events import EventBus, PublishFailed

log = logging.getLogger("obsconf.reference_services.outbox")


@dataclass(frozen=True)
class PendingEvent:
    event_id: str
    subject: str
    payload: dict[str, Any]
    trace_carrier: dict[str, str]  # W3C headers of the span that wrote the event


async def publish_pending(
    bus: EventBus, event: PendingEvent, mark_sent: Callable[[str], Awaitable[None]]
) -> bool:
    """Publish one stored event and mark it sent; False (and still pending) if NATS failed."""
    try:
        await bus.publish(event.subject, event.payload, parent=event.trace_carrier)
    except PublishFailed as error:
        log.warning(
            "publish of %s deferred to the outbox relay: %s",
            event.subject,
            error,
            extra={"event_id": event.event_id},
        )
        return False
    try:
        await mark_sent(event.event_id)
    except Exception as error:  # published; the relay re-sends, consumers dedupe
        log.warning("could not mark %s sent: %r", event.event_id, error)
    return True


class OutboxRelay:
    """Background loop: every `interval` seconds publish what is still pending."""

    def __init__(
        self,
        bus: EventBus,
        fetch_pending: Callable[[], Awaitable[list[PendingEvent]]],
        mark_sent: Callable[[str], Awaitable[None]],
        interval: float = 0.5,
    ) -> None:
        self.bus = bus
        self.fetch_pending = fetch_pending
        self.mark_sent = mark_sent
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if faults.enabled("no-outbox-relay"):
            return  # the fault: an event whose first publish failed is never sent
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)  # relay cadence, not test synchronisation
            if not self.bus.connected:
                continue
            try:
                with suppress_instrumentation():  # polling is not traced: only publishes are
                    pending = await self.fetch_pending()
                for event in pending:
                    if not await publish_pending(self.bus, event, self.mark_sent):
                        break
            except asyncio.CancelledError:
                raise
            except Exception as error:  # database away: retry next round
                log.warning("outbox relay round failed: %r", error)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
