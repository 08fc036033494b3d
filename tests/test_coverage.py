"""The coverage table (conformance/coverage.yaml -> docs/coverage.md) is sound against the
catalog: every graded_by id exists, every guarantee is graded by a clause (or listed as
project-specific), every clause is either graded or says why not, and the committed document
is the generator's output."""

from __future__ import annotations

from obsconf.conformance.catalog import Guarantee, catalog
from obsconf.conformance.coverage import DOCUMENT, LEVELS, coverage, document, level_remark, parse, problems


def test_the_table_is_sound_against_the_catalog() -> None:
    assert problems(coverage(), catalog()) == []


def test_every_graded_by_id_is_in_the_catalog() -> None:
    unknown = {g for c in coverage().clauses for g in c.graded_by} - set(catalog())
    assert not unknown


def test_every_guarantee_is_graded_by_a_clause_or_project_specific() -> None:
    cov = coverage()
    mapped = {g for c in cov.clauses for g in c.graded_by} | set(cov.project_specific)
    assert set(catalog()) <= mapped
    assert set(cov.project_specific) <= set(catalog())


def test_every_clause_has_exactly_one_of_graded_by_and_not_graded() -> None:
    for clause in coverage().clauses:
        assert bool(clause.graded_by) != bool(clause.not_graded), clause.id
        assert clause.level in LEVELS, clause.id


def test_every_specification_the_brief_names_is_there() -> None:
    assert [s.id for s in coverage().specs] == [
        "otel-http",
        "otel-db",
        "otel-messaging",
        "w3c-trace-context",
        "prometheus",
        "contract",
    ]
    assert all(s.version and s.clauses for s in coverage().specs)


def test_the_committed_document_is_the_generators_output() -> None:
    assert DOCUMENT.read_text() == document(), "run: python -m obsconf.conformance.coverage --write"


def test_the_readme_links_the_document() -> None:
    assert "docs/coverage.md" in (DOCUMENT.parent.parent / "README.md").read_text()


# The checks catch what they are there for.
SMALL = {"MET-A": Guarantee("MET-A", "MUST", "a"), "MET-B": Guarantee("MET-B", "SHOULD", "b")}


def _one(clause: dict, project: list | None = None):
    base = {"id": "X-1", "section": "s", "level": "MUST", "quote": "q"}
    raw = {
        "specs": [
            {"id": "x", "title": "t", "version": "v", "url": "u", "clauses": [{**base, **clause}]}
        ],
        "project_specific": project or [],
    }
    return parse(raw)


def test_an_unknown_id_a_missing_guarantee_and_a_double_answer_are_reported() -> None:
    found = problems(_one({"graded_by": ["MET-A", "MET-Z"]}), SMALL)
    assert any("MET-Z" in p for p in found)
    assert any(p.startswith("MET-B is graded by no clause") for p in found)
    both = problems(_one({"graded_by": ["MET-A"], "not_graded": "why"}), SMALL)
    assert any("exactly one" in p for p in both)
    neither = problems(_one({}), SMALL)
    assert any("exactly one" in p for p in neither)


def test_project_specific_covers_an_unmapped_guarantee() -> None:
    cov = _one({"graded_by": ["MET-A"]}, [{"id": "MET-B", "reason": "ours"}])
    assert problems(cov, SMALL) == []
    assert "project-specific: ours" in document_of(cov)


def test_a_bad_level_is_reported() -> None:
    assert any("level" in p for p in problems(_one({"level": "must", "not_graded": "x"}), {}))


def test_level_remarks() -> None:
    should = _one({"level": "SHOULD", "graded_by": ["MET-A"]}).clauses[0]
    must = _one({"graded_by": ["MET-B"]}).clauses[0]
    assert level_remark(should, SMALL).startswith("stricter")
    assert level_remark(must, SMALL).startswith("weaker")


def document_of(cov) -> str:
    from obsconf.conformance.coverage import render

    return render(cov, SMALL)
