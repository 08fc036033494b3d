"""Inventory service HTTP API and its `order.created` consumer (reserves stock)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import text

from obsconf.reference_services.config import Settings
from obsconf.reference_services.events import EventBus
from obsconf.reference_services.inventory import store
from obsconf.reference_services.mongo import create_database
from obsconf.reference_services.postgres import create_engine, create_tables
from obsconf.reference_services.service import HealthCheck, create_service_app
from obsconf.reference_services.telemetry.metrics import (
    STOCK_RESERVATIONS,
    STOCK_UPDATES,
    count_business,
)
from obsconf.reference_services.validation import Sku, Text36, Text64

SERVICE = "inventory-service"
DURABLE = "inventory-service-order-created"

log = logging.getLogger("obsconf.reference_services.inventory")


class StockReceipt(BaseModel):
    sku: Sku
    qty: Annotated[int, Field(gt=0, le=1_000_000)]
    warehouse: Text64


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        await create_tables(engine, store.metadata)
        client, db = create_database(settings.mongodb_url, settings.mongodb_db)
        bus = EventBus(settings.nats_url, SERVICE)
        await bus.connect()
        app.state.engine, app.state.db, app.state.bus = engine, db, bus

        async def on_order_created(event: dict[str, Any]) -> None:
            order = event["data"]
            written = await store.reserve(
                engine, db, str(event["event_id"]), order["id"], order["items"]
            )
            if written:
                count_business(STOCK_RESERVATIONS, written)
                log.info("stock reserved", extra={"order_id": order["id"], "rows": written})
            else:
                log.info(
                    "duplicate order.created ignored: already reserved",
                    extra={"order_id": order["id"], "event_id": event["event_id"]},
                )

        bus.consume("order.created", DURABLE, on_order_created)
        yield
        await bus.close()
        client.close()
        await engine.dispose()

    def health_checks(app: FastAPI) -> Mapping[str, HealthCheck]:
        async def postgres() -> None:
            async with app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def mongodb() -> object:
            return await app.state.db.command("ping")

        async def nats() -> bool:
            return app.state.bus.connected

        return {"postgres": postgres, "mongodb": mongodb, "nats": nats}

    app = create_service_app(SERVICE, lifespan, health_checks)

    @app.post("/api/inventory", status_code=201)
    async def add_stock(receipt: StockReceipt, request: Request) -> dict:
        state = request.app.state
        try:
            result = await store.add_stock(
                state.engine, state.db, receipt.sku, receipt.qty, receipt.warehouse
            )
        except store.StockFull as error:
            raise HTTPException(409, str(error)) from None
        count_business(STOCK_UPDATES)
        return result

    @app.get("/api/stock-levels")
    async def stock_levels(request: Request, sku: Sku | None = None) -> list[dict]:
        return await store.stock_levels(request.app.state.db, sku)

    @app.get("/api/reservations")
    async def reservations(
        request: Request, order_id: Annotated[Text36 | None, Query()] = None
    ) -> list[dict]:
        return await store.list_reservations(request.app.state.engine, order_id)

    return app
