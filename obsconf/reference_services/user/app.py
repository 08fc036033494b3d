"""User service HTTP API: POST/GET /api/users, GET /api/users/{id}."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from obsconf.reference_services import faults
from obsconf.reference_services.config import Settings
from obsconf.reference_services.events import EventBus
from obsconf.reference_services.outbox import OutboxRelay, publish_pending
from obsconf.reference_services.postgres import create_engine, create_tables
from obsconf.reference_services.service import HealthCheck, create_service_app
from obsconf.reference_services.telemetry.metrics import USERS_CREATED, count_business
from obsconf.reference_services.user import store
from obsconf.reference_services.validation import INT8_MAX, BigId, Text200, at_most, storable

SERVICE = "user-service"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class NewUser(BaseModel):
    name: Text200
    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=320), AfterValidator(storable)]


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        await create_tables(engine, store.metadata)
        bus = EventBus(settings.nats_url, SERVICE)
        await bus.connect()
        relay = OutboxRelay(
            bus, partial(store.pending_events, engine), partial(store.mark_sent, engine)
        )
        relay.start()
        app.state.engine, app.state.bus = engine, bus
        yield
        await relay.stop()
        await bus.close()
        await engine.dispose()

    def health_checks(app: FastAPI) -> Mapping[str, HealthCheck]:
        async def postgres() -> None:
            async with app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def nats() -> bool:
            return app.state.bus.connected

        return {"postgres": postgres, "nats": nats}

    app = create_service_app(SERVICE, lifespan, health_checks)

    def engine_of(request: Request) -> AsyncEngine:
        return request.app.state.engine

    @app.post("/api/users", status_code=201)
    async def create_user(user: NewUser, request: Request) -> dict:
        engine = engine_of(request)
        early = faults.enabled("count-before-commit")  # the fault counts a 409 too
        if early:
            count_business(USERS_CREATED)
        try:
            created, event = await store.create_user(engine, user.name, user.email)
        except store.DuplicateEmail:
            raise HTTPException(409, f"a user with email {user.email!r} exists") from None
        if not early:
            count_business(USERS_CREATED)  # only once the user's transaction has committed
        # Committed: publish now; if NATS is down the outbox relay publishes it later.
        await publish_pending(request.app.state.bus, event, partial(store.mark_sent, engine))
        return created

    @app.get("/api/users/{id}")
    async def get_user(id: BigId, request: Request) -> dict:
        user = await store.get_user(engine_of(request), id)
        if user is None:
            raise HTTPException(404, f"no user with id {id}")
        return user

    @app.get("/api/users")
    async def list_users(
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0), AfterValidator(at_most(INT8_MAX))] = 0,
    ) -> list[dict]:
        return await store.list_users(engine_of(request), limit, offset)

    return app
