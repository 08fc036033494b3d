"""Listens on the target's NATS subjects and keeps every message with its headers.

A core-NATS subscription sees JetStream publishes too, so the suite can check what really went
over the wire (traceparent, tracestate) without consuming from the target's streams.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg


@dataclass(frozen=True)
class TappedMessage:
    subject: str
    headers: dict[str, str]
    data: bytes
    time: float


class NatsTap:
    """`with NatsTap(url, subjects) as tap: ...; tap.messages` — a background subscriber."""

    def __init__(self, url: str, subjects: Sequence[str]) -> None:
        self.url = url
        self.subjects = list(subjects)
        self.messages: list[TappedMessage] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._nc: Client | None = None

    def __enter__(self) -> NatsTap:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), self._loop).result(timeout=10)
        return self

    async def _connect(self) -> None:
        import nats

        nc = self._nc = await nats.connect(self.url, connect_timeout=5, max_reconnect_attempts=2)

        async def keep(msg: Msg) -> None:
            with self._lock:
                self.messages.append(
                    TappedMessage(msg.subject, dict(msg.headers or {}), msg.data, time.time())
                )

        for subject in self.subjects:
            await nc.subscribe(subject, cb=keep)
        await nc.flush()

    def snapshot(self) -> list[TappedMessage]:
        with self._lock:
            return list(self.messages)

    def __exit__(self, *exc: object) -> None:
        if self._nc is not None:
            asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
