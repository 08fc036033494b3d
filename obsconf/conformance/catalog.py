"""The guarantee catalog (catalog.yaml) as data: id, level and statement of each guarantee.

The catalog is the specification and names no implementation; which fault of the reference
services breaks which guarantee is their own table (their negative controls), not this one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")
# Every family by id, in catalog order, with the name the reports give it.
FAMILIES = {
    "MET": "Metrics",
    "LOG": "Logs",
    "TRC": "Traces",
    "PROP": "Context propagation",
    "LOAD": "Concurrency",
    "RES": "Resilience",
}
KEYS = {"id", "level", "statement", "fed_by"}


class Level(StrEnum):
    """How binding a guarantee is: a failed MUST fails the run, a failed SHOULD is reported."""

    MUST = "MUST"
    SHOULD = "SHOULD"


@dataclass(frozen=True)
class Guarantee:
    id: str
    level: Level
    statement: str
    fed_by: tuple[str, ...] = ()  # scenario names (`scenarios()`)

    @property
    def family(self) -> str:
        return self.id.split("-", 1)[0]


@cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CATALOG_FILE.read_text())
    return document


@cache
def scenarios() -> dict[str, str]:
    """The scenarios a run drives, by name: what traffic each sends."""
    return dict(_document()["scenarios"])


@cache
def catalog() -> dict[str, Guarantee]:
    """Every guarantee by id, in catalog order."""
    raw = _document()["guarantees"]
    known_scenarios = scenarios()
    result = {}
    for entry in raw:
        extra = sorted(set(entry) - KEYS)
        if extra:
            raise ValueError(f"catalog.yaml: {entry.get('id')}: unknown key(s) {extra}")
        if entry.get("level") not in tuple(Level):
            raise ValueError(f"catalog.yaml: bad id or level in {entry}")
        guarantee = Guarantee(
            id=entry["id"],
            level=Level(entry["level"]),
            statement=entry["statement"],
            fed_by=tuple(entry.get("fed_by") or ()),
        )
        unknown = [name for name in guarantee.fed_by if name not in known_scenarios]
        if not guarantee.fed_by or unknown:
            raise ValueError(
                f"catalog.yaml: {guarantee.id}: fed_by must name scenarios of `scenarios` "
                f"({', '.join(known_scenarios)}); got {list(guarantee.fed_by)}"
            )
        if guarantee.family not in FAMILIES:
            raise ValueError(f"catalog.yaml: bad id or level in {entry}")
        if guarantee.id in result:
            raise ValueError(f"catalog.yaml: duplicate id {guarantee.id}")
        result[guarantee.id] = guarantee
    return result
