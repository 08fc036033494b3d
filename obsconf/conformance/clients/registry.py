"""Backend adapters by role and kind, found by looking: every module of this package that
defines `ADAPTER` (a class with `role`, `kind`, `options` and optionally `choices` of an
option's values) is one. Adding a backend is adding its module; the target's
`backends.<role>.kind` names it."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import obsconf.conformance.clients as package

DEFAULT_KIND = {"logs": "victorialogs", "traces": "jaeger"}  # what the local stack runs


@dataclass(frozen=True)
class StoreSpec:
    """A backend as the target names it: its kind, its URL (None: the started stack's), and
    the adapter's options (e.g. a Loki tenant)."""

    kind: str
    url: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@cache
def adapters(role: str) -> dict[str, Any]:
    """kind -> adapter class, for one role ("logs" or "traces")."""
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        adapter = getattr(module, "ADAPTER", None)
        if adapter is not None and adapter.role == role:
            found[adapter.kind] = adapter
    return found


def open_store(role: str, spec: StoreSpec) -> Any:
    """The adapter for `spec`, at its URL."""
    if spec.url is None:
        raise ValueError(f"backends.{role}: no URL (give backends.{role}.url or start a stack)")
    return adapters(role)[spec.kind](spec.url, **spec.options)
