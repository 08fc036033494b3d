"""Inventory in PostgreSQL (source of truth) and MongoDB `stock_levels` (read model).

Each write recomputes the affected SKUs' stock levels from PostgreSQL and upserts them into
MongoDB inside the same PostgreSQL transaction, under a per-SKU advisory lock: the read model
is always the last committed truth, and a MongoDB failure rolls the PostgreSQL write back.
Reservations are keyed by (event_id, sku): a redelivered `order.created` inserts nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from motor.motor_asyncio import AsyncIOMotorDatabase
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from obsconf.reference_services import validation
from obsconf.reference_services.errors import dependency

metadata = MetaData()

inventory = Table(
    "inventory",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("warehouse", String(64), primary_key=True),
    Column("qty", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

reservations = Table(
    "reservations",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("sku", String(64), primary_key=True, index=True),  # summed per SKU under the lock
    Column("order_id", String(36), nullable=False, index=True),
    Column("qty", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# Writers of one SKU queue here before they take a connection: concurrent handlers would
# otherwise queue on the SKU's advisory lock inside PostgreSQL, each holding a pooled
# connection, and the last ones hit the 3 s statement timeout and were redelivered. The
# advisory lock stays: it serialises writers across processes.
_sku_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)


def _levels(sku: str) -> Select:
    """(on hand, reserved) of `sku` in one statement."""
    return select(
        select(func.coalesce(func.sum(inventory.c.qty), 0))
        .where(inventory.c.sku == sku)
        .scalar_subquery(),
        select(func.coalesce(func.sum(reservations.c.qty), 0))
        .where(reservations.c.sku == sku)
        .scalar_subquery(),
    )


async def _sync_stock_levels(
    conn: AsyncConnection, db: AsyncIOMotorDatabase, skus: list[str]
) -> None:
    """Recompute `skus` from PostgreSQL and upsert them into MongoDB (call inside a tx)."""
    for sku in sorted(set(skus)):
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:sku))"), {"sku": sku})
        # Both sums in one round trip: the lock is held until commit, so every round trip
        # inside it serialises all writers of the SKU (every welcome order has the same one).
        on_hand, reserved = (await conn.execute(_levels(sku))).one()
        level = {
            "sku": sku,
            "on_hand": int(on_hand),
            "reserved": int(reserved),
            "available": int(on_hand) - int(reserved),
            "updated_at": datetime.now(UTC).isoformat(),
        }
        async with dependency("mongodb"):
            await db.stock_levels.update_one({"_id": sku}, {"$set": level}, upsert=True)


class StockFull(Exception):
    """The receipt would take a warehouse's quantity beyond what its column holds."""

    def __init__(self, sku: str, warehouse: str) -> None:
        super().__init__(
            f"the quantity of {sku!r} at {warehouse!r} would exceed {validation.INT4_MAX}"
        )


async def add_stock(
    engine: AsyncEngine, db: AsyncIOMotorDatabase, sku: str, qty: int, warehouse: str
) -> dict[str, Any]:
    """Add `qty` of `sku` at `warehouse`; returns the warehouse's new quantity. Raises
    StockFull (nothing written) when the sum would overflow the integer column."""
    row = insert(inventory).values(sku=sku, warehouse=warehouse, qty=qty)
    fits = (
        inventory.c.qty <= validation.INT4_MAX - row.excluded.qty if validation.hardened() else None
    )
    upsert = row.on_conflict_do_update(
        index_elements=[inventory.c.sku, inventory.c.warehouse],
        set_={"qty": inventory.c.qty + row.excluded.qty, "updated_at": func.now()},
        where=fits,
    ).returning(inventory.c.qty)
    async with dependency("postgres"), engine.begin() as conn:
        total = (await conn.execute(upsert)).scalar_one_or_none()
        if total is None:
            raise StockFull(sku, warehouse)
        await _sync_stock_levels(conn, db, [sku])
    return {"sku": sku, "warehouse": warehouse, "qty": total}


async def reserve(
    engine: AsyncEngine,
    db: AsyncIOMotorDatabase,
    event_id: str,
    order_id: str,
    items: list[dict[str, Any]],
) -> int:
    """Reserve an order's items once per event; returns the number of rows written (0: dup)."""
    per_sku: dict[str, int] = {}
    for item in items:
        per_sku[item["sku"]] = per_sku.get(item["sku"], 0) + int(item["qty"])
    rows = [
        {"event_id": event_id, "sku": sku, "order_id": order_id, "qty": qty}
        for sku, qty in per_sku.items()
    ]
    statement = (
        insert(reservations).values(rows).on_conflict_do_nothing().returning(reservations.c.sku)
    )
    async with contextlib.AsyncExitStack() as held:
        for sku in sorted(per_sku):  # the order the SKU locks are taken in PostgreSQL too
            await held.enter_async_context(_sku_locks[sku])
        async with dependency("postgres"), engine.begin() as conn:
            written = (await conn.execute(statement)).scalars().all()
            if written:
                await _sync_stock_levels(conn, db, list(written))
    return len(written)


async def list_reservations(engine: AsyncEngine, order_id: str | None) -> list[dict[str, Any]]:
    query = select(reservations).order_by(reservations.c.created_at)
    if order_id is not None:
        query = query.where(reservations.c.order_id == order_id)
    async with dependency("postgres"), engine.connect() as conn:
        rows = (await conn.execute(query.limit(1000))).all()
    return [
        {
            "event_id": r.event_id,
            "order_id": r.order_id,
            "sku": r.sku,
            "qty": r.qty,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]


async def stock_levels(db: AsyncIOMotorDatabase, sku: str | None) -> list[dict[str, Any]]:
    query = {} if sku is None else {"_id": sku}
    async with dependency("mongodb"):
        docs = await db.stock_levels.find(query).sort("_id", 1).to_list(1000)
    return [{k: v for k, v in doc.items() if k != "_id"} for doc in docs]
