"""JetStream: the shared stream, traced publishing and durable explicit-ack consumers.

Every service calls `ensure_stream()` at start-up: the stream is created idempotently by
whoever comes first. Consumers are durable pull consumers with no delivery cap: when a
handler fails because a dependency is down the message is redelivered after a back-off for as
long as the outage lasts; when it fails for the event itself (or the event is malformed) it is
retried a few times, then dead-lettered - copied with the reason to `deadletter.<subject>` in
the OBSCONF_DEAD_LETTERS stream, counted in `events_dead_lettered_total` and logged at ERROR.
The consume span of every delivery continues the trace carried in the message headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry.trace import Status, StatusCode

from obsconf.reference_services import faults
from obsconf.reference_services.errors import DependencyDown
from obsconf.reference_services.telemetry.json_logs import request_id_var
from obsconf.reference_services.telemetry.messaging import consume_span, publish_span
from obsconf.reference_services.telemetry.metrics import (
    EVENTS_CONSUMED,
    EVENTS_DEAD_LETTERED,
    EVENTS_PUBLISHED,
    count_business,
)

STREAM = "OBSCONF_EVENTS"
SUBJECTS = ["user.created", "order.created"]
DEAD_LETTER_STREAM = "OBSCONF_DEAD_LETTERS"
DEAD_LETTER_PREFIX = "deadletter"
PUBLISH_TIMEOUT = 2.0
# A consumer fetches up to FETCH_BATCH messages and handles them concurrently: each handler
# waits on database round trips (profiled: the order consumer idled 85 % of a drain handling
# one message at a time). The batch stays under the PostgreSQL pool (10 + 10 overflow; more
# handlers than connections time out on the pool and are redelivered), and small enough to
# finish well inside ack_wait (a message waiting behind a long batch is redelivered while
# queued and consumed twice). Each message is still acked (or naked) on its own.
FETCH_BATCH = 10
MAX_BACKOFF_S = 5.0  # redelivery back-off while a dependency is down (0.5 s doubling to this)
POISON_ATTEMPTS = 3  # deliveries of an event that fails for itself, then it is dead-lettered
DELIVERY_CAP = 2  # the `delivery-cap` fault: the server drops a message after this many
REQUEST_ID_HEADER = "X-Request-ID"

log = logging.getLogger("obsconf.reference_services.events")

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class PublishFailed(Exception):
    """The event was not acknowledged by JetStream (it stays in the outbox)."""


# A failure of these kinds is the dependency's, not the event's: the event is kept.
TRANSIENT: tuple[type[BaseException], ...] = (DependencyDown, PublishFailed, TimeoutError, OSError)


class EventBus:
    def __init__(self, url: str, service: str) -> None:
        self.url = url
        self.service = service
        self.nc: NATS | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False

    async def connect(self) -> None:
        self.nc = await nats.connect(
            self.url,
            name=self.service,
            connect_timeout=2,
            reconnect_time_wait=0.5,
            max_reconnect_attempts=-1,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnect,
            reconnected_cb=self._on_reconnect,
        )
        self._running = True
        await self.ensure_stream()

    async def _on_error(self, error: Exception) -> None:
        log.warning("nats error: %s", error)

    async def _on_disconnect(self) -> None:
        log.warning("nats disconnected")

    async def _on_reconnect(self) -> None:
        log.info("nats reconnected")

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def ensure_stream(self) -> None:
        assert self.nc is not None
        js = self.nc.jetstream()
        for name, subjects in (
            (STREAM, SUBJECTS),
            (DEAD_LETTER_STREAM, [f"{DEAD_LETTER_PREFIX}.>"]),
        ):
            try:
                await js.stream_info(name)
            except NotFoundError:
                await js.add_stream(StreamConfig(name=name, subjects=subjects))

    async def publish(
        self, subject: str, event: Mapping[str, Any], parent: Mapping[str, str] | None = None
    ) -> None:
        """Publish `event` (with its `event_id` as Nats-Msg-Id) under a PRODUCER span."""
        if not self.connected:
            raise PublishFailed("not connected to NATS")
        assert self.nc is not None
        headers = {"Nats-Msg-Id": str(event["event_id"])}
        request_id = request_id_var.get()
        if request_id and not faults.enabled("no-request-id-on-publish"):
            headers[REQUEST_ID_HEADER] = request_id
        with publish_span(subject, headers, parent) as span:
            span.set_attribute("messaging.message.id", str(event["event_id"]))
            try:
                ack = await self.nc.jetstream().publish(
                    subject,
                    json.dumps(event).encode(),
                    timeout=PUBLISH_TIMEOUT,
                    stream=STREAM,
                    headers=headers,
                )
            except Exception as error:
                span.set_status(Status(StatusCode.ERROR, f"publish failed: {error!r}"))
                raise PublishFailed(f"{subject}: {error!r}") from error
            span.set_attribute("messaging.nats.stream_sequence", ack.seq)
        count_business(EVENTS_PUBLISHED, 1, subject)
        log.info(
            "published %s",
            subject,
            extra={"event_id": event["event_id"], "duplicate": bool(ack.duplicate)},
        )

    def consume(self, subject: str, durable: str, handler: Handler) -> None:
        """Run `handler` on every message of `subject` (durable, explicit ack), in background."""
        self._tasks.append(asyncio.create_task(self._consume_loop(subject, durable, handler)))

    async def _consume_loop(self, subject: str, durable: str, handler: Handler) -> None:
        assert self.nc is not None
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=15,
            # No delivery cap: a message whose dependency is down is kept until it is back;
            # a poison message is dead-lettered by `_handle`, never dropped by the server.
            max_deliver=DELIVERY_CAP if faults.enabled("delivery-cap") else -1,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=subject,
        )
        subscription = None
        while self._running:
            try:
                if subscription is None:
                    # create or update: a durable kept from an earlier run gets this config
                    await self.nc.jetstream().add_consumer(STREAM, config)
                    subscription = await self.nc.jetstream().pull_subscribe(
                        subject, durable=durable, stream=STREAM, config=config
                    )
                messages = await subscription.fetch(batch=FETCH_BATCH, timeout=1)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as error:  # NATS away: keep trying, never die
                log.warning("fetch on %s failed: %r", subject, error)
                await asyncio.sleep(0.5)  # back-off while NATS reconnects
                continue
            await asyncio.gather(*(self._handle(subject, m, handler) for m in messages))

    async def _handle(self, subject: str, message: Msg, handler: Handler) -> None:
        headers = message.headers or {}
        token = request_id_var.set(headers.get(REQUEST_ID_HEADER, ""))
        if faults.enabled("consumer-log-before-context"):
            log.info("received %s", subject)
        try:
            with consume_span(subject, headers) as span:
                delivered = message.metadata.num_delivered
                span.set_attribute("messaging.nats.delivery_count", delivered)
                try:
                    event = json.loads(message.data)
                    span.set_attribute("messaging.message.id", str(event["event_id"]))
                except (ValueError, KeyError, TypeError) as error:
                    span.set_status(Status(StatusCode.ERROR, "malformed event"))
                    await self._dead_letter(subject, message, "malformed", repr(error))
                    return
                try:
                    await handler(event)
                except Exception as error:
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, repr(error)))
                    await self._failed(subject, message, event, error)
                    return
                await message.ack()
                count_business(EVENTS_CONSUMED, 1, subject)
        finally:
            request_id_var.reset(token)

    async def _failed(
        self, subject: str, message: Msg, event: dict[str, Any], error: Exception
    ) -> None:
        """A dependency down: redeliver after a back-off, as long as it takes. Anything else
        (the event itself cannot be processed): retry a few times, then dead-letter it."""
        delivered = message.metadata.num_delivered
        extra = {"event_id": event.get("event_id"), "delivery": delivered}
        if isinstance(error, TRANSIENT):
            delay = min(MAX_BACKOFF_S, 0.5 * 2 ** min(delivered - 1, 8))
            if faults.enabled("delivery-cap"):
                delay = 1.0  # the old fixed delay: the cap is reached within seconds
            log.warning(  # kept, not lost: the outage itself is the error (503s, /health)
                "handling %s failed (delivery %d): %s; redelivery in %.1f s",
                subject,
                delivered,
                error,
                delay,
                extra=extra,
            )
            await message.nak(delay=delay)
        elif delivered < POISON_ATTEMPTS:
            log.error(
                "handling %s failed (delivery %d of %d before dead-lettering): %r",
                subject,
                delivered,
                POISON_ATTEMPTS,
                error,
                extra=extra,
            )
            await message.nak(delay=1)
        else:
            await self._dead_letter(subject, message, type(error).__name__, repr(error))

    async def _dead_letter(self, subject: str, message: Msg, reason: str, detail: str) -> None:
        """Move `message` to `deadletter.<subject>` (kept in the dead-letter stream with the
        reason), count and log it, then terminate it; if that publish fails, keep it."""
        assert self.nc is not None
        target = f"{DEAD_LETTER_PREFIX}.{subject}"
        delivered = message.metadata.num_delivered
        headers = {
            **(message.headers or {}),
            "Nats-Msg-Id": f"dead-{message.metadata.sequence.stream}",
            "Obsconf-Dead-Letter-Reason": f"{reason}: {detail}"[:500],
            "Obsconf-Deliveries": str(delivered),
        }
        try:
            js = self.nc.jetstream()
            await js.publish(
                target,
                message.data,
                timeout=PUBLISH_TIMEOUT,
                stream=DEAD_LETTER_STREAM,
                headers=headers,
            )
        except Exception as error:
            log.error(
                "dead-lettering a %s message failed, it stays for redelivery: %r", subject, error
            )
            await message.nak(delay=MAX_BACKOFF_S)
            return
        await message.term()
        EVENTS_DEAD_LETTERED.labels(subject, reason).inc()
        log.error(
            "%s message dead-lettered to %s after %d deliveries: %s",
            subject,
            target,
            delivered,
            detail,
            extra={"reason": reason, "stream_sequence": message.metadata.sequence.stream},
        )

    async def close(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.drain(), timeout=2)
            except Exception:  # shutting down anyway
                await self.nc.close()
