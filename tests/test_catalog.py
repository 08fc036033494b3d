"""The catalog is complete: 40+ guarantees, each with a test; and the reference services'
negative-control table gives each a fault that breaks it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from obsconf.conformance.catalog import FAMILIES, Guarantee, catalog
from obsconf.reference_services.faults import FAULTS
from obsconf.reference_services.negative_controls import (
    all_faults,
    broken_by,
    problems,
    read_table,
    table,
    unbroken,
)

SUITE = Path(__file__).resolve().parent.parent / "conformance"
MARK = re.compile(r'@pytest\.mark\.guarantee\("([A-Z0-9-]+)"\)')


def _tested_ids() -> set[str]:
    return {gid for path in SUITE.glob("test_*.py") for gid in MARK.findall(path.read_text())}


def test_at_least_forty_guarantees_in_every_family() -> None:
    guarantees = catalog()
    assert len(guarantees) >= 40
    assert {g.family for g in guarantees.values()} == set(FAMILIES)


def test_every_guarantee_has_a_test_and_every_test_a_guarantee() -> None:
    assert _tested_ids() == set(catalog())


def test_the_catalog_names_no_implementation() -> None:
    """The catalog is the specification: id, level, statement; no fault modes."""
    text = (SUITE / "catalog.yaml").read_text()
    assert "faults:" not in text
    assert not any(name in text for name in FAULTS)


def test_every_guarantee_has_a_negative_control() -> None:
    missing = unbroken(read_table())
    assert not missing, f"guarantees no fault can break: {missing}"


def test_the_table_names_catalog_ids_and_reference_faults_only() -> None:
    assert problems(read_table()) == []


def test_every_fault_mode_is_a_negative_control() -> None:
    assert set(all_faults()) == set(FAULTS)
    assert all(broken_by(name) for name in FAULTS)


def test_broken_by_is_in_catalog_order() -> None:
    order = list(catalog())
    for fault, ids in table().items():
        assert [g.id for g in broken_by(fault)] == sorted(ids, key=order.index), fault
    assert broken_by("no-such-fault") == []


# The checks themselves catch what they are there for (a table with a hole, a typo).
SMALL = {
    "MET-A": Guarantee("MET-A", "MUST", "a"),
    "MET-B": Guarantee("MET-B", "MUST", "b"),
}


def test_a_guarantee_without_a_fault_is_reported() -> None:
    assert unbroken({"no-inject": ["MET-A"]}, SMALL) == ["MET-B"]
    assert unbroken({"no-inject": ["MET-A"], "drop-logs": ["MET-B"]}, SMALL) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"no-such-fault": ["MET-A"]}, "no-such-fault: not a fault mode"),
        ({"no-inject": ["MET-Z"]}, "no-inject: MET-Z is not in the catalog"),
        ({"no-inject": []}, "no-inject: must be a non-empty list"),
        ({"no-inject": "MET-A"}, "no-inject: must be a non-empty list"),
        ({"no-inject": ["MET-A", "MET-A"]}, "no-inject: MET-A is listed twice"),
    ],
)
def test_table_problems_are_named(raw: dict, expected: str) -> None:
    found = problems(raw, SMALL)
    assert any(expected in p for p in found), found
