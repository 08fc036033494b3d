"""Poison messages: an event the consumer can never handle is dead-lettered with its reason,
counted in /metrics and logged at ERROR with the trace_id it came with - never silently gone."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid

import httpx
import nats
import pytest

from obsconf.reference_services.events import DEAD_LETTER_STREAM, POISON_ATTEMPTS
from obsconf.reference_services.launcher import ReferenceServices
from obsconf.stack.endpoints import Endpoints
from obsconf.stack.waiting import poll

pytestmark = pytest.mark.stack


def _dead_count(base: str, reason: str) -> float:
    wanted = f'events_dead_lettered_total{{reason="{reason}",subject="order.created"}}'
    for line in httpx.get(base + "/metrics", timeout=5).text.splitlines():
        if line.startswith(wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _publish(url: str, data: bytes, headers: dict[str, str]) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().publish("order.created", data, headers=headers)
    finally:
        await nc.close()


async def _dead_letters(url: str) -> list[tuple[dict[str, str], bytes]]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(DEAD_LETTER_STREAM)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(DEAD_LETTER_STREAM, seq)
            found.append((dict(msg.headers or {}), msg.data))
        return found
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("reason", "payload"),
    [
        ("KeyError", lambda eid: json.dumps({"event_id": eid, "data": {"id": eid}}).encode()),
        ("malformed", lambda eid: b"{not json " + eid.encode()),
    ],
    ids=["handler-fails", "malformed"],
)
def test_a_poison_message_is_dead_lettered_counted_and_logged(
    reason: str, payload, endpoints: Endpoints, reference_services: ReferenceServices
) -> None:
    inventory = reference_services.urls["inventory-service"]
    before = _dead_count(inventory, reason)
    event_id, trace_id = str(uuid.uuid4()), secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01", "Nats-Msg-Id": event_id}
    asyncio.run(_publish(endpoints.nats, payload(event_id), headers))
    poll(
        lambda: _dead_count(inventory, reason),
        until=lambda count: count == before + 1,
        timeout=30,
        describe=f"events_dead_lettered_total{{reason={reason}}} to rise by 1",
    )
    letters = asyncio.run(_dead_letters(endpoints.nats))
    mine = [h for h, data in letters if event_id.encode() in data]
    assert len(mine) == 1 and mine[0]["Obsconf-Dead-Letter-Reason"].startswith(reason), mine
    expected_deliveries = POISON_ATTEMPTS if reason != "malformed" else 1
    assert mine[0]["Obsconf-Deliveries"] == str(expected_deliveries)
    log = reference_services.log_path("inventory-service")
    lines = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{")]
    dead = [ln for ln in lines if "dead-lettered" in ln["msg"] and ln["trace_id"] == trace_id]
    assert len(dead) == 1 and dead[0]["level"] == "error", dead
