"""MongoDB access (motor) shared by the order and inventory services, with short timeouts."""

from __future__ import annotations

from motor.motor_asyncio import AsyncIOMotorClient, AsyncIOMotorDatabase


def create_database(url: str, name: str) -> tuple[AsyncIOMotorClient, AsyncIOMotorDatabase]:
    """Client failing fast (2 s server selection, 3 s per operation) and its database."""
    client: AsyncIOMotorClient = AsyncIOMotorClient(
        url,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=3000,
        timeoutMS=3000,
    )
    return client, client[name]
