"""Users and their outbox in PostgreSQL: the outbox row is written in the user's transaction."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg.errors
import sqlalchemy.exc
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from obsconf.reference_services.errors import dependency
from obsconf.reference_services.outbox import PendingEvent
from obsconf.reference_services.telemetry.messaging import carrier_of_current_context

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

outbox = Table(
    "outbox",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("subject", String(100), nullable=False),
    Column("payload", Text, nullable=False),
    Column("trace_carrier", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True), index=True),
)


class DuplicateEmail(Exception):
    pass


def user_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "created_at": row.created_at.isoformat(),
    }


async def create_user(engine: AsyncEngine, name: str, email: str) -> tuple[dict, PendingEvent]:
    """Insert the user and its `user.created` outbox row in one transaction."""
    try:
        async with dependency("postgres"), engine.begin() as conn:
            row = (
                await conn.execute(insert(users).values(name=name, email=email).returning(*users.c))
            ).one()
            user = user_json(row)
            event_id = str(uuid.uuid4())
            payload = {
                "event_id": event_id,
                "type": "user.created",
                "occurred_at": datetime.now(UTC).isoformat(),
                "data": user,
            }
            event = PendingEvent(event_id, "user.created", payload, carrier_of_current_context())
            await conn.execute(
                insert(outbox).values(
                    event_id=event.event_id,
                    subject=event.subject,
                    payload=json.dumps(payload),
                    trace_carrier=json.dumps(event.trace_carrier),
                )
            )
    except sqlalchemy.exc.IntegrityError as error:
        if isinstance(error.orig, psycopg.errors.UniqueViolation):
            raise DuplicateEmail(email) from error
        raise
    return user, event


async def get_user(engine: AsyncEngine, user_id: int) -> dict | None:
    async with dependency("postgres"), engine.connect() as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).one_or_none()
    return user_json(row) if row else None


async def list_users(engine: AsyncEngine, limit: int, offset: int) -> list[dict]:
    async with dependency("postgres"), engine.connect() as conn:
        rows = await conn.execute(select(users).order_by(users.c.id).limit(limit).offset(offset))
    return [user_json(row) for row in rows]


async def pending_events(engine: AsyncEngine, min_age_seconds: float = 1.0) -> list[PendingEvent]:
    """Unpublished outbox rows older than `min_age_seconds` (younger ones the writer publishes)."""
    query = (
        select(outbox)
        .where(outbox.c.published_at.is_(None))
        .where(
            outbox.c.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, min_age_seconds)
        )
        .order_by(outbox.c.created_at)
        .limit(100)
    )
    async with dependency("postgres"), engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        PendingEvent(r.event_id, r.subject, json.loads(r.payload), json.loads(r.trace_carrier))
        for r in rows
    ]


async def mark_sent(engine: AsyncEngine, event_id: str) -> None:
    async with dependency("postgres"), engine.begin() as conn:
        await conn.execute(
            update(outbox).where(outbox.c.event_id == event_id).values(published_at=func.now())
        )
