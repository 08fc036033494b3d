"""A fixed set of hostile requests, one or more per endpoint of the contract (docs/contract.md 3).

Text no storage can hold (a NUL character, a lone UTF-16 surrogate), integers beyond 64 bits,
NaN and Infinity where an integer belongs, and bodies of 1 MiB. A correct service answers each
with a 4xx (a body case names the field at fault; an oversized body may get 413 instead), keeps
its answer bounded, writes nothing, and stays healthy; a GET may also answer 200 or 404 (a huge
offset finds no rows) - never a 5xx.

Each case is built with a fresh `tag`, so what it would have stored can be looked up afterwards
through the contract's own endpoints (`Hostile.leftover`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

NUL = "\x00"
SURROGATE = "\ud800"  # a lone high surrogate: no UTF-8 encoding exists
HUGE = 10**30  # beyond int64 (and any SQL integer column)
OVERSIZED = 1024 * 1024  # characters in the oversized text field
ANSWER_LIMIT = 16 * 1024  # bytes: an answer longer than this echoes the input


@dataclass(frozen=True)
class Lookup:
    """A GET through the contract that answers an empty list when nothing was stored."""

    role: str
    path: str
    route: str


@dataclass(frozen=True)
class Hostile:
    role: str
    method: str
    path: str
    route: str
    what: str  # what is hostile, for messages
    field: str | None = None  # the field a 4xx should name (body cases)
    body: Any = None  # sent as json.dumps(body): NaN/Infinity literals, \ud800 escapes
    leftover: Lookup | None = None  # must find nothing afterwards

    def content(self) -> bytes | None:
        return None if self.body is None else json.dumps(self.body).encode()

    def describe(self) -> str:
        return f"{self.method} {self.route} with {self.what}"


def _users(tag: str) -> list[Hostile]:
    def user(what: str, field: str, name: str, email: str) -> Hostile:
        return Hostile(
            "user", "POST", "/api/users", "/api/users", what, field, {"name": name, "email": email}
        )

    email = f"hostile-{tag}@example.com"
    return [
        user("a NUL in name", "name", f"Ada{NUL}Lovelace", email),
        user("a lone surrogate in name", "name", f"Ada{SURROGATE}", email),
        user("a NUL in email", "email", "Ada", f"ada{NUL}-{tag}@example.com"),
        user("a 1 MiB name", "name", "A" * OVERSIZED, email),
        Hostile("user", "GET", f"/api/users/{HUGE}", "/api/users/{id}", "a 31-digit id"),
        Hostile("user", "GET", f"/api/users?offset={HUGE}", "/api/users", "a 31-digit offset"),
        Hostile("user", "GET", f"/api/users?limit={HUGE}", "/api/users", "a 31-digit limit"),
    ]


def _orders(tag: str, user_id: int) -> list[Hostile]:
    ids = iter(range(user_id, user_id + 100))  # one owner per case: a leftover names its case

    def order(what: str, field: str, sku: str = "SKU-1", qty: Any = 1, uid: Any = None) -> Hostile:
        owner = next(ids)
        body = {"user_id": owner if uid is None else uid, "items": [{"sku": sku, "qty": qty}]}
        mine = Lookup("order", f"/api/orders?user_id={owner}", "/api/orders")
        return Hostile("order", "POST", "/api/orders", "/api/orders", what, field, body, mine)

    return [
        order("a user_id of 2**64", "user_id", uid=2**64),
        order("a NUL in sku", "sku", sku=f"SKU{NUL}{tag}"),
        order("a lone surrogate in sku", "sku", sku=f"SKU{SURROGATE}"),
        order("qty NaN", "qty", qty=float("nan")),
        order("qty Infinity", "qty", qty=float("inf")),
        order("qty 10**30", "qty", qty=HUGE),
        order("a 1 MiB sku", "sku", sku="S" * OVERSIZED),
        Hostile("order", "GET", "/api/orders/a%00b", "/api/orders/{id}", "a NUL in the id"),
        Hostile("order", "GET", f"/api/orders?user_id={HUGE}", "/api/orders", "a 31-digit user_id"),
    ]


def _inventory(tag: str) -> list[Hostile]:
    skus = (f"HOSTILE-{tag}-{n}" for n in range(100))  # one SKU per case

    def receipt(what: str, field: str, **changes: Any) -> Hostile:
        sku = next(skus)
        body = {"sku": sku, "qty": 1, "warehouse": "w1", **changes}
        mine = Lookup("inventory", f"/api/stock-levels?sku={sku}", "/api/stock-levels")
        lookup = mine if body["sku"] == sku else None
        return Hostile(
            "inventory", "POST", "/api/inventory", "/api/inventory", what, field, body, lookup
        )

    return [
        receipt("a NUL in sku", "sku", sku=f"HOSTILE-{tag}{NUL}"),
        receipt("a NUL in warehouse", "warehouse", warehouse=f"w{NUL}1"),
        receipt("a lone surrogate in warehouse", "warehouse", warehouse=f"w{SURROGATE}"),
        receipt("qty NaN", "qty", qty=float("nan")),
        receipt("qty 10**30", "qty", qty=HUGE),
        receipt("a 1 MiB warehouse", "warehouse", warehouse="W" * OVERSIZED),
        Hostile("inventory", "GET", "/api/stock-levels?sku=a%00b", "/api/stock-levels", "a NUL"),
        Hostile(
            "inventory", "GET", "/api/reservations?order_id=a%00b", "/api/reservations", "a NUL"
        ),
    ]


def hostile_requests(tag: str, user_id: int) -> list[Hostile]:
    """Every hostile case; `tag` makes what a case would store findable, `user_id` starts a
    range of 100 ids no order belongs to yet."""
    return [*_users(tag), *_orders(tag, user_id), *_inventory(tag)]


def judge(case: Hostile, status: int, answer: str) -> str | None:
    """What is wrong with the answer (`status`, body text) to `case` (None: nothing)."""
    if status >= 500:
        return f"answered {status}: {answer[:200]!r}"
    if len(answer) > ANSWER_LIMIT:
        return f"answered {len(answer)} bytes (the input echoed back?): {answer[:120]!r}..."
    if case.field is None:
        return None
    if not 400 <= status < 500:
        return f"answered {status}, expected a 4xx"
    if status != 413 and case.field not in answer:
        return f"answered {status} without naming {case.field!r}: {answer[:200]!r}"
    return None
