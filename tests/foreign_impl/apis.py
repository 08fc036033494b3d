"""The User, Order and Inventory APIs and their NATS consumers, on blocking drivers.

Users live in PostgreSQL (`foreign_users`), orders in MongoDB (`foreign.orders`), inventory in
PostgreSQL (`foreign_inventory`, `foreign_reservations`) with its read model in MongoDB
(`foreign.stock_levels`). Events are published straight after the write commits (no outbox:
if NATS is down at that moment the event is lost, a gap no guarantee of the suite covers).
"""

from __future__ import annotations

import json
import os
import queue
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import obs
import psycopg
import psycopg.errors
import pymongo
import pymongo.errors
from bus import Bus
from web import Api, HttpError, Request, Route, Unavailable

USERS_CREATED = "foreign_users_created_total"
ORDERS_CREATED = "foreign_orders_created_total"
WELCOME_ORDERS = "foreign_welcome_orders_total"
STOCK_UPDATES = "foreign_stock_updates_total"
PUBLISHED = "foreign_events_published_total"
CONSUMED = "foreign_events_consumed_total"
for _name, _text in (
    (USERS_CREATED, "Users committed."),
    (ORDERS_CREATED, "Orders created (API and welcome orders)."),
    (WELCOME_ORDERS, "Welcome orders created."),
    (STOCK_UPDATES, "Stock receipts written."),
    (PUBLISHED, "Events acknowledged by JetStream, by subject."),
    (CONSUMED, "Events processed, by subject."),
):
    obs.declare(_name, "counter", _text)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MONGO_DB = "foreign"
WELCOME = uuid.UUID("0d2c6a55-8f7e-4b61-9d3e-5f0f7c0a1e42")
DB_ERRORS = (psycopg.OperationalError, pymongo.errors.ConnectionFailure)


def now() -> str:
    return datetime.now(UTC).isoformat()


# --- validation -------------------------------------------------------------------------------


def storable(value: str) -> bool:
    """PostgreSQL text holds no NUL; a lone surrogate has no UTF-8 form."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value


class Invalid:
    """Collects field problems; `check()` raises one 422 naming every field at fault."""

    def __init__(self) -> None:
        self.problems: list[dict[str, Any]] = []

    def add(self, where: str, field: str, message: str) -> None:
        self.problems.append({"loc": [where, field], "msg": message})

    def text(self, data: dict[str, Any], field: str, longest: int) -> str:
        value = data.get(field)
        if not isinstance(value, str) or not 1 <= len(value.strip()) <= longest:
            self.add("body", field, f"must be a string of 1 to {longest} characters")
            return ""
        if not storable(value):
            self.add("body", field, "must be UTF-8 text without NUL")
            return ""
        return value.strip()

    def integer(self, data: dict[str, Any], field: str, low: int, high: int, where: str = "body"):
        value = data.get(field)
        if where == "query" and isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(where, field, f"must be an integer from {low} to {high}")
            return 0
        return value

    def check(self) -> None:
        if self.problems:
            raise HttpError(422, {"detail": self.problems})


# --- storage ----------------------------------------------------------------------------------


class Postgres:
    """A few idle connections reused across requests; each `transaction()` commits or rolls
    back, under a CLIENT span."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue()

    @contextmanager
    def transaction(self, operation: str, table: str) -> Iterator[psycopg.Connection]:
        attributes = {
            "db.system.name": "postgresql",
            "db.system": "postgresql",
            "db.operation.name": operation,
            "db.collection.name": table,
        }
        with obs.span(f"{operation} {table}", obs.CLIENT, attributes=attributes):
            try:
                connection = self.idle.get_nowait()
            except queue.Empty:
                try:
                    connection = psycopg.connect(self.url, connect_timeout=3)
                except DB_ERRORS as error:
                    raise Unavailable(f"postgres unavailable: {error}") from error
            try:
                with connection.transaction():
                    yield connection
            except DB_ERRORS as error:
                connection.close()
                self.discard_idle()  # a server that went away took the idle ones with it
                raise Unavailable(f"postgres unavailable: {error}") from error
            except BaseException:
                if connection.closed or connection.broken:
                    raise
                self.idle.put(connection)
                raise
            self.idle.put(connection)

    def discard_idle(self) -> None:
        """Close every idle connection: after one failed, the others were opened to the same
        server and are as dead, each would cost a request its 503 once the server is back."""
        while True:
            try:
                connection = self.idle.get_nowait()
            except queue.Empty:
                return
            connection.close()

    def ping(self) -> str:
        try:
            with psycopg.connect(self.url, connect_timeout=2) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error as error:
            return f"down: {error}"
        return "ok"


class Mongo:
    def __init__(self, url: str) -> None:
        self.client = pymongo.MongoClient(url, serverSelectionTimeoutMS=3000, tz_aware=True)
        self.db = self.client[MONGO_DB]

    @contextmanager
    def call(self, operation: str, collection: str) -> Iterator[Any]:
        attributes = {
            "db.system.name": "mongodb",
            "db.system": "mongodb",
            "db.operation.name": operation,
            "db.collection.name": collection,
        }
        with obs.span(f"{operation} {collection}", obs.CLIENT, attributes=attributes):
            try:
                yield self.db[collection]
            except DB_ERRORS as error:
                raise Unavailable(f"mongodb unavailable: {error}") from error

    def ping(self) -> str:
        try:
            self.client.admin.command("ping")
        except pymongo.errors.PyMongoError as error:
            return f"down: {error}"
        return "ok"


# --- events -----------------------------------------------------------------------------------


def publish(bus: Bus, subject: str, data: dict[str, Any]) -> None:
    """Publish one event under a PRODUCER span; its context goes into the message headers."""
    event = {"event_id": str(uuid.uuid4()), "type": subject, "occurred_at": now(), "data": data}
    attributes = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.name": "publish",
        "messaging.operation.type": "send",
        "messaging.message.id": event["event_id"],
    }
    with obs.span(f"publish {subject}", obs.PRODUCER, attributes=attributes) as span:
        headers = {**obs.outgoing_headers(), "Nats-Msg-Id": event["event_id"]}
        if obs.request_id.get():
            headers["X-Request-ID"] = obs.request_id.get()
        try:
            sequence = bus.publish(subject, json.dumps(event).encode(), headers)
        except Exception as error:
            span.error = f"publish failed: {error!r}"
            obs.emit("error", f"publish {subject} failed, event lost: {error!r}")
            return
        span.attributes["messaging.nats.stream_sequence"] = sequence
    obs.inc(PUBLISHED, subject=subject)
    obs.emit("info", f"published {subject}", event_id=event["event_id"])


def consumer(
    work: Callable[[dict[str, Any]], None],
) -> Callable[[str, dict[str, str], bytes], None]:
    """A message handler: a CONSUMER span continuing the context in the headers, the request id
    of the message, and `work(event)` inside; an exception naks the message."""

    def handle(subject: str, headers: dict[str, str], data: bytes) -> None:
        caller = obs.incoming(headers.get("traceparent"), [headers.get("tracestate", "")])
        token = obs.request_id.set(headers.get("X-Request-ID", ""))
        attributes = {
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "messaging.operation.name": "process",
            "messaging.operation.type": "process",
        }
        try:
            with obs.span(
                f"process {subject}",
                obs.CONSUMER,
                parent=caller,
                new_trace=caller is None,
                attributes=attributes,
            ) as span:
                try:
                    event = json.loads(data)
                    span.attributes["messaging.message.id"] = str(event["event_id"])
                    obs.emit("info", f"received {subject}", event_id=event["event_id"])
                    work(event)
                except Exception as error:
                    obs.emit("error", f"handling {subject} failed, redelivery asked: {error!r}")
                    raise
            obs.inc(CONSUMED, subject=subject)
        finally:
            obs.request_id.reset(token)

    return handle


# --- user -------------------------------------------------------------------------------------


class UserApi(Api):
    def __init__(self) -> None:
        self.pg = Postgres(os.environ["POSTGRES_URL"])  # the plain URL: no SQLAlchemy here
        self.bus = Bus(os.environ["NATS_URL"])
        self.routes = [
            Route("POST", "/api/users", self.create),
            Route("GET", "/api/users", self.list),
            Route("GET", "/api/users/{id}", self.get),
        ]

    def start(self) -> None:
        with psycopg.connect(self.pg.url, autocommit=True) as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS foreign_users (id BIGSERIAL PRIMARY KEY, "
                "name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, "
                "created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
        self.bus.connect()

    def stop(self) -> None:
        self.bus.close()

    def health(self) -> dict[str, str]:
        return {"postgres": self.pg.ping(), "nats": "ok" if self.bus.connected else "down"}

    @staticmethod
    def _json(row: tuple) -> dict[str, Any]:
        return {"id": row[0], "name": row[1], "email": row[2], "created_at": row[3].isoformat()}

    def create(self, request: Request) -> tuple[int, Any]:
        data = request.json_object()
        invalid = Invalid()
        name = invalid.text(data, "name", 200)
        email = data.get("email")
        if (
            not isinstance(email, str)
            or len(email) > 320
            or not EMAIL.match(email)
            or not storable(email)
        ):
            invalid.add("body", "email", "must be an email address")
        invalid.check()
        try:
            with self.pg.transaction("INSERT", "foreign_users") as connection:
                row = connection.execute(
                    "INSERT INTO foreign_users (name, email) VALUES (%s, %s) "
                    "RETURNING id, name, email, created_at",
                    (name, email),
                ).fetchone()
        except psycopg.errors.UniqueViolation:
            raise HttpError(409, {"detail": f"email {email!r} is taken"}) from None
        user = self._json(row)
        obs.inc(USERS_CREATED)
        obs.emit("info", "user created", user_id=user["id"])
        publish(self.bus, "user.created", user)
        return 201, user

    def get(self, request: Request, id: str) -> tuple[int, Any]:
        if not re.fullmatch(r"-?\d{1,18}", id):
            raise HttpError(422, {"detail": [{"loc": ["path", "id"], "msg": "not an integer"}]})
        with self.pg.transaction("SELECT", "foreign_users") as connection:
            row = connection.execute(
                "SELECT id, name, email, created_at FROM foreign_users WHERE id = %s", (int(id),)
            ).fetchone()
        if row is None:
            raise HttpError(404, {"detail": f"no user {id}"})
        return 200, self._json(row)

    def list(self, request: Request) -> tuple[int, Any]:
        invalid, query = Invalid(), request.query
        limit = invalid.integer(query, "limit", 1, 1000, "query") if "limit" in query else 100
        offset = invalid.integer(query, "offset", 0, 2**62, "query") if "offset" in query else 0
        invalid.check()
        with self.pg.transaction("SELECT", "foreign_users") as connection:
            rows = connection.execute(
                "SELECT id, name, email, created_at FROM foreign_users ORDER BY id "
                "LIMIT %s OFFSET %s",
                (limit, offset),
            ).fetchall()
        return 200, [self._json(row) for row in rows]


# --- order ------------------------------------------------------------------------------------


class OrderApi(Api):
    def __init__(self) -> None:
        self.mongo = Mongo(os.environ["MONGODB_URL"])
        self.bus = Bus(os.environ["NATS_URL"])
        self.routes = [
            Route("POST", "/api/orders", self.create),
            Route("GET", "/api/orders", self.list),
            Route("GET", "/api/orders/{id}", self.get),
        ]

    def start(self) -> None:
        self.bus.connect()
        self.bus.subscribe(
            "user.created", "foreign-order-user-created", consumer(self.on_user_created)
        )

    def stop(self) -> None:
        self.bus.close()
        self.mongo.client.close()

    def health(self) -> dict[str, str]:
        return {"mongodb": self.mongo.ping(), "nats": "ok" if self.bus.connected else "down"}

    @staticmethod
    def _json(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": doc["_id"],
            "user_id": doc["user_id"],
            "items": doc["items"],
            "kind": doc["kind"],
            "status": doc["status"],
            "created_at": doc["created_at"],
        }

    def _insert(self, user_id: int, items: list, kind: str, order_id: str) -> dict | None:
        doc = {
            "_id": order_id,
            "user_id": user_id,
            "items": items,
            "kind": kind,
            "status": "created",
            "created_at": now(),
        }
        try:
            with self.mongo.call("insert", "orders") as orders:
                orders.insert_one(doc)
        except pymongo.errors.DuplicateKeyError:
            return None
        obs.inc(ORDERS_CREATED)
        return self._json(doc)

    def create(self, request: Request) -> tuple[int, Any]:
        data = request.json_object()
        invalid = Invalid()
        user_id = invalid.integer(data, "user_id", 1, 2**62)
        items = data.get("items")
        if not isinstance(items, list) or not 1 <= len(items) <= 100:
            invalid.add("body", "items", "must be a list of 1 to 100 items")
            items = []
        clean = []
        for item in items:
            if not isinstance(item, dict):
                invalid.add("body", "items", "each item must be an object")
                continue
            clean.append(
                {
                    "sku": invalid.text(item, "sku", 64),
                    "qty": invalid.integer(item, "qty", 1, 10_000),
                }
            )
        invalid.check()
        order = self._insert(user_id, clean, "regular", str(uuid.uuid4()))
        assert order is not None  # a fresh id
        obs.emit("info", "order created", order_id=order["id"])
        publish(self.bus, "order.created", order)
        return 201, order

    def get(self, request: Request, id: str) -> tuple[int, Any]:
        with self.mongo.call("find", "orders") as orders:
            doc = orders.find_one({"_id": id})
        if doc is None:
            raise HttpError(404, {"detail": f"no order {id}"})
        return 200, self._json(doc)

    def list(self, request: Request) -> tuple[int, Any]:
        invalid = Invalid()
        query = {}
        if "user_id" in request.query:
            query["user_id"] = invalid.integer(request.query, "user_id", 1, 2**62, "query")
        invalid.check()
        with self.mongo.call("find", "orders") as orders:
            docs = list(orders.find(query).sort("created_at", 1).limit(1000))
        return 200, [self._json(doc) for doc in docs]

    def on_user_created(self, event: dict[str, Any]) -> None:
        """One welcome order per user; its id derives from the event, so a redelivery finds
        the order it already made."""
        user_id = int(event["data"]["id"])
        order_id = str(uuid.uuid5(WELCOME, str(event["event_id"])))
        order = self._insert(user_id, [{"sku": "WELCOME-KIT", "qty": 1}], "welcome", order_id)
        if order is None:
            obs.emit("info", "welcome order exists: duplicate user.created ignored")
            return
        obs.inc(WELCOME_ORDERS)
        obs.emit("info", "welcome order created", order_id=order_id, user_id=user_id)
        publish(self.bus, "order.created", order)


# --- inventory --------------------------------------------------------------------------------


class InventoryApi(Api):
    def __init__(self) -> None:
        self.pg = Postgres(os.environ["POSTGRES_URL"])
        self.mongo = Mongo(os.environ["MONGODB_URL"])
        self.bus = Bus(os.environ["NATS_URL"])
        self.routes = [
            Route("POST", "/api/inventory", self.receive),
            Route("GET", "/api/stock-levels", self.levels),
            Route("GET", "/api/reservations", self.reservations),
        ]

    def start(self) -> None:
        with psycopg.connect(self.pg.url, autocommit=True) as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS foreign_inventory (sku TEXT, warehouse TEXT, "
                "qty INTEGER NOT NULL, PRIMARY KEY (sku, warehouse))"
            )
            connection.execute(
                "CREATE TABLE IF NOT EXISTS foreign_reservations (event_id TEXT, sku TEXT, "
                "order_id TEXT NOT NULL, qty INTEGER NOT NULL, "
                "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (event_id, sku))"
            )
        self.bus.connect()
        self.bus.subscribe(
            "order.created", "foreign-inventory-order-created", consumer(self.on_order_created)
        )

    def stop(self) -> None:
        self.bus.close()
        self.mongo.client.close()

    def health(self) -> dict[str, str]:
        return {
            "postgres": self.pg.ping(),
            "mongodb": self.mongo.ping(),
            "nats": "ok" if self.bus.connected else "down",
        }

    def _sync_levels(self, connection: psycopg.Connection, skus: list[str]) -> None:
        """Recompute the skus' levels from PostgreSQL into the MongoDB read model."""
        for sku in sorted(set(skus)):
            on_hand, reserved = connection.execute(
                "SELECT (SELECT coalesce(sum(qty), 0) FROM foreign_inventory WHERE sku = %s), "
                "(SELECT coalesce(sum(qty), 0) FROM foreign_reservations WHERE sku = %s)",
                (sku, sku),
            ).fetchone()
            level = {
                "sku": sku,
                "on_hand": int(on_hand),
                "reserved": int(reserved),
                "available": int(on_hand) - int(reserved),
                "updated_at": now(),
            }
            with self.mongo.call("update", "stock_levels") as levels:
                levels.update_one({"_id": sku}, {"$set": level}, upsert=True)

    def receive(self, request: Request) -> tuple[int, Any]:
        data = request.json_object()
        invalid = Invalid()
        sku = invalid.text(data, "sku", 64)
        qty = invalid.integer(data, "qty", 1, 1_000_000)
        warehouse = invalid.text(data, "warehouse", 64)
        invalid.check()
        with self.pg.transaction("UPSERT", "foreign_inventory") as connection:
            (total,) = connection.execute(
                "INSERT INTO foreign_inventory (sku, warehouse, qty) VALUES (%s, %s, %s) "
                "ON CONFLICT (sku, warehouse) DO UPDATE SET qty = foreign_inventory.qty + "
                "excluded.qty RETURNING qty",
                (sku, warehouse, qty),
            ).fetchone()
            self._sync_levels(connection, [sku])
        obs.inc(STOCK_UPDATES)
        return 201, {"sku": sku, "warehouse": warehouse, "qty": total}

    def levels(self, request: Request) -> tuple[int, Any]:
        query = {"_id": request.query["sku"]} if "sku" in request.query else {}
        with self.mongo.call("find", "stock_levels") as levels:
            docs = list(levels.find(query).sort("_id", 1).limit(1000))
        return 200, [{k: v for k, v in doc.items() if k != "_id"} for doc in docs]

    def reservations(self, request: Request) -> tuple[int, Any]:
        sql, args = "SELECT event_id, order_id, sku, qty, created_at FROM foreign_reservations", ()
        if not storable(request.query.get("order_id", "")):
            return 200, []  # nothing stored can match it
        if "order_id" in request.query:
            sql, args = sql + " WHERE order_id = %s", (request.query["order_id"],)
        with self.pg.transaction("SELECT", "foreign_reservations") as connection:
            rows = connection.execute(sql + " ORDER BY created_at LIMIT 1000", args).fetchall()
        keys = ("event_id", "order_id", "sku", "qty", "created_at")
        return 200, [dict(zip(keys, row, strict=True)) for row in rows]

    def on_order_created(self, event: dict[str, Any]) -> None:
        order = event["data"]
        per_sku: dict[str, int] = {}
        for item in order["items"]:
            per_sku[item["sku"]] = per_sku.get(item["sku"], 0) + int(item["qty"])
        with self.pg.transaction("INSERT", "foreign_reservations") as connection:
            written = [
                sku
                for sku, qty in per_sku.items()
                if connection.execute(
                    "INSERT INTO foreign_reservations (event_id, sku, order_id, qty) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING sku",
                    (str(event["event_id"]), sku, order["id"], qty),
                ).fetchone()
            ]
            self._sync_levels(connection, written)
        if written:
            obs.emit("info", "stock reserved", order_id=order["id"], rows=len(written))
        else:
            obs.emit("info", "order.created seen before: nothing reserved", order_id=order["id"])


ROLES: dict[str, Callable[[], Api]] = {
    "user": UserApi,
    "order": OrderApi,
    "inventory": InventoryApi,
}
