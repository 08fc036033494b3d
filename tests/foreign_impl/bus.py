"""NATS JetStream from blocking code: nats-py runs on an event loop in its own thread; callers
block on its futures. Consumers are durable pull consumers, each fetched by its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import nats
import obs
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

STREAM = "OBSCONF_EVENTS"  # the contract's stream; created by whichever service comes first
SUBJECTS = ["user.created", "order.created"]

# handler(subject, headers, data) -> None; an exception naks the message (redelivered)
Handler = Callable[[str, dict[str, str], bytes], None]


class Bus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="nats", daemon=True)
        self.thread.start()
        self.nc: Any = None
        self.js: Any = None
        self.running = True

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def connect(self) -> None:
        async def disconnected() -> None:
            obs.emit("warning", "nats disconnected")

        async def reconnected() -> None:
            obs.emit("info", "nats reconnected")

        async def error(problem: Exception) -> None:
            obs.emit("warning", f"nats error: {problem!r}")

        self.nc = self.call(
            nats.connect(
                self.url,
                name=obs.SERVICE,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
        )
        self.js = self.nc.jetstream()
        self.call(self._ensure_stream())

    async def _ensure_stream(self) -> None:
        try:
            await self.js.find_stream_name_by_subject(SUBJECTS[0])
        except NotFoundError:
            with contextlib.suppress(BadRequestError):  # another service was first
                await self.js.add_stream(StreamConfig(name=STREAM, subjects=SUBJECTS))

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def publish(self, subject: str, data: bytes, headers: dict[str, str]) -> int:
        """Publish to JetStream and wait for its ack; returns the stream sequence."""
        ack = self.call(self.js.publish(subject, data, headers=headers, timeout=3), timeout=5)
        return ack.seq

    def subscribe(self, subject: str, durable: str, handler: Handler) -> None:
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW,
            ack_wait=15,
            max_deliver=20,
        )
        subscription = self.call(
            self.js.pull_subscribe(subject, durable=durable, stream=STREAM, config=config)
        )
        thread = threading.Thread(
            target=self._fetch_loop, args=(subscription, handler), name=durable, daemon=True
        )
        thread.start()

    def _fetch_loop(self, subscription: Any, handler: Handler) -> None:
        while self.running:
            try:
                messages = self.call(subscription.fetch(batch=10, timeout=1), timeout=5)
            except Exception:  # nothing to fetch, or NATS away: try again
                continue
            for message in messages:
                try:
                    handler(message.subject, dict(message.headers or {}), message.data)
                except Exception:  # logged by the handler's span; redeliver
                    self.call(message.nak(delay=1))
                else:
                    self.call(message.ack())

    def close(self) -> None:
        self.running = False
        if self.nc is not None:
            with contextlib.suppress(Exception):  # shutting down anyway
                self.call(self.nc.drain(), timeout=3)
        self.loop.call_soon_threadsafe(self.loop.stop)
