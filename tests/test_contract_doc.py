"""The implementer's contract (docs/contract.md) and the harness cannot drift: its tables of
placeholders, environment variables, metrics and labels are parsed and compared with what the
harness really provides and reads."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from obsconf.conformance.contract import CONTRACT_ENV, PLACEHOLDERS, StartCommand, run_values
from obsconf.conformance.target import DEFAULT_LABELS, DEFAULT_METRICS
from obsconf.stack.services import ServiceProcesses
from tests.test_start_commands import _endpoints

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "contract.md"
CELL = re.compile(r"^`([^`]+)`")


def table(name: str) -> list[list[str]]:
    """The rows (cells, header and separator left out) of the table after
    `<!-- contract:NAME -->`."""
    lines = DOC.read_text().splitlines()
    marker = f"<!-- contract:{name} -->"
    assert marker in lines, f"{DOC}: no {marker}"
    rows = []
    for line in lines[lines.index(marker) + 3 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert rows, f"{DOC}: the table after {marker} is empty"
    return rows


def code(cell: str) -> str:
    match = CELL.match(cell)
    assert match, f"{DOC}: expected a `code` cell, got {cell!r}"
    return match.group(1)


def test_the_readme_links_the_contract() -> None:
    top = (REPO / "README.md").read_text().split("\n## ")[0]
    assert "docs/contract.md" in top


def test_placeholders_table_is_the_harness_placeholders() -> None:
    documented = [code(row[0]).strip("{}") for row in table("placeholders")]
    assert sorted(documented) == sorted(PLACEHOLDERS)
    assert len(documented) == len(set(documented))


def test_environment_table_is_what_the_harness_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names and values of the documented environment equal what a started service gets on
    top of the harness's own environment (a command with no `env` of its own)."""
    rows = table("environment")
    documented = {code(row[0]): code(row[1]) for row in rows}
    assert documented == CONTRACT_ENV
    for name in CONTRACT_ENV:
        monkeypatch.delenv(name, raising=False)
    services = ServiceProcesses(
        _endpoints(tmp_path), {"user-service": ("user", StartCommand(("true",)))}
    )
    services.ports["user-service"] = 41873
    given = services.environment("user-service")
    added = {k: v for k, v in given.items() if os.environ.get(k) != v}
    assert set(added) == set(documented)
    assert added["OBSCONF_SERVICE"] == "user-service" and added["OBSCONF_PORT"] == "41873"
    assert added["POSTGRES_URL"] == "postgresql://obsconf@127.0.0.1:5432/obsconf"
    assert added["DATABASE_URL"].startswith("postgresql+psycopg://")
    for row in rows:  # every example is the value's documented form
        example = code(row[2])
        assert re.fullmatch(r"[\w.:/+@-]+", example), example


def test_run_placeholders_are_documented() -> None:
    assert set(run_values()) <= set(PLACEHOLDERS)


def test_metrics_table_is_the_targets_metric_names() -> None:
    documented = {code(row[0]): code(row[1]) for row in table("metrics")}
    assert documented == DEFAULT_METRICS


def test_labels_table_is_the_targets_label_names() -> None:
    documented = {code(row[0]): code(row[1]) for row in table("labels")}
    assert documented == DEFAULT_LABELS


def test_every_guarantee_the_contract_names_exists() -> None:
    from obsconf.conformance.catalog import catalog

    named = set(re.findall(r"\b((?:MET|LOG|TRC|PROP|LOAD)-[A-Z0-9-]*[A-Z0-9])\b", DOC.read_text()))
    unknown = sorted(named - set(catalog()))
    assert not unknown, f"{DOC} names guarantees the catalog does not have: {unknown}"
