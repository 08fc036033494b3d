"""The guarantee catalog (catalog.yaml) as data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

CATALOG_FILE = Path(__file__).with_name("catalog.yaml")
FAMILIES = ("MET", "LOG", "TRC", "PROP", "LOAD")


@dataclass(frozen=True)
class Guarantee:
    id: str
    level: str  # MUST or SHOULD
    statement: str
    faults: tuple[str, ...]

    @property
    def family(self) -> str:
        return self.id.split("-", 1)[0]


@cache
def catalog() -> dict[str, Guarantee]:
    """Every guarantee by id, in catalog order."""
    raw = yaml.safe_load(CATALOG_FILE.read_text())["guarantees"]
    result = {}
    for entry in raw:
        guarantee = Guarantee(
            id=entry["id"],
            level=entry["level"],
            statement=entry["statement"],
            faults=tuple(entry.get("faults") or ()),
        )
        if guarantee.family not in FAMILIES or guarantee.level not in ("MUST", "SHOULD"):
            raise ValueError(f"catalog.yaml: bad id or level in {entry}")
        if guarantee.id in result:
            raise ValueError(f"catalog.yaml: duplicate id {guarantee.id}")
        result[guarantee.id] = guarantee
    return result


def broken_by(fault: str) -> list[Guarantee]:
    """The guarantees a fault mode must break."""
    return [g for g in catalog().values() if fault in g.faults]


def all_faults() -> list[str]:
    """Every fault named in the catalog, sorted."""
    return sorted({f for g in catalog().values() for f in g.faults})
