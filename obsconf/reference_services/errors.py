"""Dependency failures become 503 answers: short timeouts, never a hang."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pymongo.errors
import sqlalchemy.exc

# Upper bound for one dependency call (the drivers' own timeouts are shorter).
CALL_TIMEOUT = 4.0


class DependencyDown(Exception):
    """A backing service (postgres, mongodb, nats) did not answer in time."""

    def __init__(self, dependency: str, cause: BaseException) -> None:
        super().__init__(f"{dependency} unavailable: {type(cause).__name__}: {cause}")
        self.dependency = dependency


_UNAVAILABLE: tuple[type[BaseException], ...] = (
    TimeoutError,
    OSError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    pymongo.errors.ConnectionFailure,  # includes ServerSelectionTimeoutError, NetworkTimeout
    pymongo.errors.ExecutionTimeout,
)


@asynccontextmanager
async def dependency(name: str, timeout: float = CALL_TIMEOUT) -> AsyncIterator[None]:
    """Bound the block by `timeout` and turn connection failures into DependencyDown."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except _UNAVAILABLE as error:
        raise DependencyDown(name, error) from error
