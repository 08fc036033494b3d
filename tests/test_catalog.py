"""The catalog is complete: 40+ guarantees, each with a test and a fault that breaks it."""

from __future__ import annotations

import re
from pathlib import Path

from conformance.catalog import FAMILIES, all_faults, catalog
from reference_services.faults import FAULTS

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


def test_every_guarantee_has_a_negative_control() -> None:
    unbreakable = sorted(gid for gid, g in catalog().items() if not g.faults)
    assert not unbreakable, f"guarantees no fault can break: {unbreakable}"


def test_catalog_faults_are_the_reference_fault_modes() -> None:
    assert set(all_faults()) == set(FAULTS)
