"""PostgreSQL access shared by the user and inventory services: async engine with short timeouts."""

from __future__ import annotations

import sqlalchemy
from opentelemetry.instrumentation.utils import suppress_instrumentation
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from obsconf.reference_services.telemetry.tracing import instrument_engine


def create_engine(url: str) -> AsyncEngine:
    """Async engine (psycopg 3): 2 s connect and pool timeouts, 3 s statement timeout."""
    engine = create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_timeout=2,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 2, "options": "-c statement_timeout=3000"},
    )
    instrument_engine(engine)
    return engine


async def create_tables(engine: AsyncEngine, metadata: MetaData) -> None:
    """CREATE TABLE IF NOT EXISTS, tolerating a concurrent instance doing the same."""
    try:
        with suppress_instrumentation():  # start-up DDL is not part of any request's trace
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
    except sqlalchemy.exc.IntegrityError:  # lost a race on pg_type: the tables exist now
        pass
