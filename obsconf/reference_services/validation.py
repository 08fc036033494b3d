"""What the reference services accept: text and numbers their storage can hold, bounded bodies.

PostgreSQL text cannot hold NUL, UTF-8 cannot encode a lone surrogate, a bigint (and a MongoDB
int64) stops at 2**63 - 1: such input is refused with a 422 naming the field, before anything
is written or sent downstream (an order whose SKU inventory cannot store is refused at the
order API, not dropped later by the consumer). The `no-input-hardening` fault switches all of
it off: the checks pass everything, bodies are unbounded and the 422 echoes the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, StringConstraints

from obsconf.reference_services import faults

INT4_MAX = 2**31 - 1  # PostgreSQL integer
INT8_MAX = 2**63 - 1  # PostgreSQL bigint, MongoDB int64
MAX_BODY_BYTES = 64 * 1024  # the largest valid body (100 order items) is < 8 KiB
MAX_MESSAGE = 200  # characters of one validation message

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def hardened() -> bool:
    """False under the `no-input-hardening` fault."""
    return not faults.enabled("no-input-hardening")


def storable(value: str) -> str:
    """Refuse NUL characters and lone surrogates (PostgreSQL text and UTF-8 cannot hold them)."""
    if hardened() and (found := _UNSTORABLE.search(value)):
        what = "a NUL character" if found.group() == "\x00" else "a lone surrogate"
        raise ValueError(f"must not contain {what} (at index {found.start()})")
    return value


def at_most(limit: int) -> Callable[[int], int]:
    """A check that an integer fits a column holding at most `limit`."""

    def check(value: int) -> int:
        if hardened() and value > limit:
            raise ValueError(f"must be at most {limit} (what storage holds)")
        return value

    return check


def _text(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


# Stripped, non-empty, storable strings of at most N characters (spelled out per length:
# a type checker reads an alias, not the result of a call that builds one).
Text36 = Annotated[str, _text(36), AfterValidator(storable)]
Text64 = Annotated[str, _text(64), AfterValidator(storable)]
Text200 = Annotated[str, _text(200), AfterValidator(storable)]
Sku = Text64  # inventory's sku column: varchar(64)
BigId = Annotated[int, AfterValidator(at_most(INT8_MAX))]


def _bounded(error: dict[str, Any]) -> dict[str, Any]:
    """One validation error without the input it refused (unbounded, maybe not encodable)."""
    loc: Sequence[Any] = error.get("loc", ())
    return {
        "loc": [part if isinstance(part, int) else str(part)[:MAX_MESSAGE] for part in loc],
        "msg": str(error.get("msg", ""))[:MAX_MESSAGE],
        "type": error.get("type", ""),
    }


def install(app: FastAPI) -> None:
    """Cap request bodies (413) and answer 422s that name the field but echo no input."""
    if not hardened():
        return
    app.max_body_size = MAX_BODY_BYTES

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": [_bounded(e) for e in error.errors()]}, status_code=422)
