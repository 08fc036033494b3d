"""The catalog is complete: 40+ guarantees, each with a test; and the reference services'
negative-control table gives each a fault that breaks it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from obsconf.conformance.catalog import FAMILIES, Guarantee, catalog
from obsconf.reference_services.faults import FAULTS
from obsconf.reference_services.negative_controls import (
    IMPLEMENTATIONS,
    Implementation,
    all_faults,
    broken_by,
    problems,
    read_table,
    table,
    unbroken,
)
from obsconf.stack.native import ensure_built

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


@pytest.mark.parametrize("impl", IMPLEMENTATIONS.values(), ids=lambda impl: impl.name)
def test_other_implementations_tables_name_reference_faults_they_implement(
    impl: Implementation,
) -> None:
    """Each row names a reference fault (same name, same meaning) that the implementation
    knows: started with an unknown fault it must refuse to start and list the valid ones
    (`valid: a, b`), as the reference services do."""
    assert impl.target.is_file() and problems(read_table(impl.table)) == []
    proc = subprocess.run(
        [str(ensure_built(impl.name))],
        env={**os.environ, "OBSCONF_FAULTS": "no-such-fault"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    listed = re.search(r"valid: ([a-z0-9, -]+)", proc.stderr)
    assert proc.returncode != 0 and listed, proc.stderr
    assert set(all_faults(impl.table)) <= set(listed.group(1).strip().split(", "))


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
