"""Orders in MongoDB. Each order document embeds its `order.created` outbox entry, so order and
event are written atomically by one single-document insert (FerretDB has no transactions)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo.errors
from motor.motor_asyncio import AsyncIOMotorDatabase

from obsconf.reference_services.errors import dependency
from obsconf.reference_services.outbox import PendingEvent
from obsconf.reference_services.telemetry.messaging import carrier_of_current_context

WELCOME_ITEMS = [{"sku": "WELCOME-KIT", "qty": 1}]
_WELCOME_NAMESPACE = uuid.UUID("6f1c1f7e-3c55-4c4e-9a59-0b5b1c1d2e01")


def welcome_order_id(event_id: str) -> str:
    """Deterministic order id per user.created event: a redelivery finds the order it made."""
    return str(uuid.uuid5(_WELCOME_NAMESPACE, event_id))


def order_json(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "user_id": doc["user_id"],
        "items": doc["items"],
        "kind": doc["kind"],
        "status": doc["status"],
        "source_event_id": doc.get("source_event_id"),
        "created_at": doc["created_at"],
    }


async def insert_order(
    db: AsyncIOMotorDatabase,
    user_id: int,
    items: list[dict[str, Any]],
    kind: str = "regular",
    order_id: str | None = None,
    source_event_id: str | None = None,
) -> tuple[dict[str, Any], PendingEvent] | None:
    """Insert an order with its pending `order.created` event; None if `order_id` exists."""
    order_id = order_id or str(uuid.uuid4())
    now = datetime.now(UTC)
    doc: dict[str, Any] = {
        "_id": order_id,
        "user_id": user_id,
        "items": items,
        "kind": kind,
        "status": "created",
        "source_event_id": source_event_id,
        "created_at": now.isoformat(),
    }
    event_id = order_id  # one order.created per order; `mark_sent` finds it by _id
    payload = {
        "event_id": event_id,
        "type": "order.created",
        "occurred_at": now.isoformat(),
        "data": order_json(doc),
    }
    event = PendingEvent(event_id, "order.created", payload, carrier_of_current_context())
    doc["outbox"] = {
        "event_id": event_id,
        "subject": event.subject,
        "payload": payload,
        "trace_carrier": event.trace_carrier,
        "published": False,
        "created_at": now,
    }
    try:
        async with dependency("mongodb"):
            await db.orders.insert_one(doc)
    except pymongo.errors.DuplicateKeyError:
        return None
    return order_json(doc), event


async def get_order(db: AsyncIOMotorDatabase, order_id: str) -> dict[str, Any] | None:
    async with dependency("mongodb"):
        doc = await db.orders.find_one({"_id": order_id})
    return order_json(doc) if doc else None


async def list_orders(db: AsyncIOMotorDatabase, user_id: int | None) -> list[dict[str, Any]]:
    query = {} if user_id is None else {"user_id": user_id}
    async with dependency("mongodb"):
        docs = await db.orders.find(query).sort("created_at", 1).to_list(1000)
    return [order_json(doc) for doc in docs]


async def pending_events(
    db: AsyncIOMotorDatabase, min_age_seconds: float = 1.0
) -> list[PendingEvent]:
    """Orders whose event is unpublished and older than `min_age_seconds`."""
    cutoff = datetime.now(UTC) - timedelta(seconds=min_age_seconds)
    query = {"outbox.published": False, "outbox.created_at": {"$lt": cutoff}}
    async with dependency("mongodb"):
        docs = await db.orders.find(query, {"outbox": 1}).limit(100).to_list(100)
    return [
        PendingEvent(
            d["outbox"]["event_id"],
            d["outbox"]["subject"],
            d["outbox"]["payload"],
            d["outbox"]["trace_carrier"],
        )
        for d in docs
    ]


async def mark_sent(db: AsyncIOMotorDatabase, event_id: str) -> None:
    async with dependency("mongodb"):
        # By _id: a filter on outbox.event_id scanned every order (FerretDB), O(N) per event.
        await db.orders.update_one({"_id": event_id}, {"$set": {"outbox.published": True}})
