"""Order service HTTP API and its `user.created` consumer (one welcome order per user)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field

from obsconf.reference_services.config import Settings
from obsconf.reference_services.events import EventBus
from obsconf.reference_services.mongo import create_database
from obsconf.reference_services.order import store
from obsconf.reference_services.outbox import OutboxRelay, publish_pending
from obsconf.reference_services.service import HealthCheck, create_service_app
from obsconf.reference_services.telemetry.metrics import (
    ORDERS_CREATED,
    WELCOME_ORDERS_CREATED,
    count_business,
)
from obsconf.reference_services.validation import BigId, Sku, Text64

SERVICE = "order-service"
DURABLE = "order-service-user-created"

log = logging.getLogger("obsconf.reference_services.order")


class OrderItem(BaseModel):
    sku: Sku  # what inventory can store: an order it could not reserve is refused here
    qty: Annotated[int, Field(gt=0, le=10_000)]


class NewOrder(BaseModel):
    user_id: Annotated[BigId, Field(gt=0)]
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=100)]


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client, db = create_database(settings.mongodb_url, settings.mongodb_db)
        bus = EventBus(settings.nats_url, SERVICE)
        await bus.connect()
        app.state.db, app.state.bus = db, bus
        bus.consume("user.created", DURABLE, partial(on_user_created, db, bus))
        relay = OutboxRelay(bus, partial(store.pending_events, db), partial(store.mark_sent, db))
        relay.start()
        yield
        await relay.stop()
        await bus.close()
        client.close()

    def health_checks(app: FastAPI) -> Mapping[str, HealthCheck]:
        async def mongodb() -> object:
            return await app.state.db.command("ping")

        async def nats() -> bool:
            return app.state.bus.connected

        return {"mongodb": mongodb, "nats": nats}

    app = create_service_app(SERVICE, lifespan, health_checks)

    @app.post("/api/orders", status_code=201)
    async def create_order(order: NewOrder, request: Request) -> dict:
        db, bus = request.app.state.db, request.app.state.bus
        items = [item.model_dump() for item in order.items]
        created = await store.insert_order(db, order.user_id, items)
        assert created is not None  # fresh uuid: never a duplicate
        doc, event = created
        count_business(ORDERS_CREATED)
        await publish_pending(bus, event, partial(store.mark_sent, db))
        return doc

    @app.get("/api/orders/{id}")
    async def get_order(id: Text64, request: Request) -> dict:
        order = await store.get_order(request.app.state.db, id)
        if order is None:
            raise HTTPException(404, f"no order with id {id}")
        return order

    @app.get("/api/orders")
    async def list_orders(
        request: Request, user_id: Annotated[BigId | None, Query(gt=0)] = None
    ) -> list[dict]:
        return await store.list_orders(request.app.state.db, user_id)

    return app


async def on_user_created(db: Any, bus: EventBus, event: dict[str, Any]) -> None:
    """One welcome order per user.created event; a redelivery finds it and creates nothing."""
    user_id = int(event["data"]["id"])
    event_id = str(event["event_id"])
    created = await store.insert_order(
        db,
        user_id,
        list(store.WELCOME_ITEMS),
        kind="welcome",
        order_id=store.welcome_order_id(event_id),
        source_event_id=event_id,
    )
    if created is None:
        log.info(
            "duplicate user.created ignored: welcome order exists",
            extra={"event_id": event_id, "user_id": user_id},
        )
        return
    doc, order_event = created
    count_business(ORDERS_CREATED)
    count_business(WELCOME_ORDERS_CREATED)
    log.info("welcome order created", extra={"order_id": doc["id"], "user_id": user_id})
    await publish_pending(bus, order_event, partial(store.mark_sent, db))
