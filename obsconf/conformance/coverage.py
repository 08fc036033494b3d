"""The coverage table: the normative clauses of the specifications obsconf follows
(coverage.yaml), each mapped to the catalog guarantees that grade it or given the reason it
is not graded, rendered as docs/coverage.md.

    python -m obsconf.conformance.coverage            # the document on stdout
    python -m obsconf.conformance.coverage --write    # write docs/coverage.md
    python -m obsconf.conformance.coverage --check    # exit 1 if docs/coverage.md differs
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from obsconf.conformance.catalog import Guarantee, Level, catalog

COVERAGE_FILE = Path(__file__).with_name("coverage.yaml")
DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "coverage.md"
LEVELS = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY")
SPEC_KEYS = {"id", "title", "version", "url", "clauses"}
CLAUSE_KEYS = {"id", "section", "level", "quote", "graded_by", "not_graded", "note"}


@dataclass(frozen=True)
class Clause:
    id: str
    spec: str
    section: str
    level: str
    quote: str
    graded_by: tuple[str, ...]
    not_graded: str | None
    note: str | None

    @property
    def strength(self) -> str:
        """MUST or SHOULD/MAY, without the negation: the level a guarantee is compared to."""
        return self.level.split()[0]


@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    version: str
    url: str
    clauses: tuple[Clause, ...]


@dataclass(frozen=True)
class Coverage:
    specs: tuple[Spec, ...]
    project_specific: dict[str, str]  # guarantee id -> why no clause grades it

    @property
    def clauses(self) -> list[Clause]:
        return [c for s in self.specs for c in s.clauses]


def _clause(spec: str, raw: dict[str, Any]) -> Clause:
    extra = sorted(set(raw) - CLAUSE_KEYS)
    if extra:
        raise ValueError(f"coverage.yaml: clause {raw.get('id')}: unknown key(s) {extra}")
    return Clause(
        id=raw["id"],
        spec=spec,
        section=raw["section"],
        level=raw["level"],
        quote=raw["quote"],
        graded_by=tuple(raw.get("graded_by") or ()),
        not_graded=raw.get("not_graded"),
        note=raw.get("note"),
    )


def parse(raw: dict[str, Any]) -> Coverage:
    """Coverage from the YAML document (no validation against the catalog: see `problems`)."""
    specs = []
    for entry in raw["specs"]:
        extra = sorted(set(entry) - SPEC_KEYS)
        if extra:
            raise ValueError(f"coverage.yaml: spec {entry.get('id')}: unknown key(s) {extra}")
        clauses = tuple(_clause(entry["id"], c) for c in entry["clauses"])
        specs.append(Spec(entry["id"], entry["title"], entry["version"], entry["url"], clauses))
    project = {e["id"]: e["reason"] for e in raw.get("project_specific") or []}
    return Coverage(tuple(specs), project)


@cache
def coverage() -> Coverage:
    return parse(yaml.safe_load(COVERAGE_FILE.read_text()))


def problems(cov: Coverage, guarantees: dict[str, Guarantee]) -> list[str]:
    """What is wrong with the table against the catalog; empty when it is sound."""
    found = []
    seen: set[str] = set()
    for clause in cov.clauses:
        where = f"{clause.spec}/{clause.id}"
        if clause.id in seen:
            found.append(f"{where}: duplicate clause id")
        seen.add(clause.id)
        if clause.level not in LEVELS:
            found.append(f"{where}: level {clause.level!r} is not one of {LEVELS}")
        if bool(clause.graded_by) == bool(clause.not_graded):
            found.append(f"{where}: needs exactly one of graded_by / not_graded")
        if not clause.quote.strip() or not clause.section.strip():
            found.append(f"{where}: needs a section and a quote")
        found += [
            f"{where}: graded_by names {gid}, which is not in the catalog"
            for gid in clause.graded_by
            if gid not in guarantees
        ]
    mapped = {gid for c in cov.clauses for gid in c.graded_by}
    found += [
        f"project_specific names {gid}, which is not in the catalog"
        for gid in cov.project_specific
        if gid not in guarantees
    ]
    found += [
        f"project_specific lists {gid}, which clause(s) already grade"
        for gid in cov.project_specific
        if gid in mapped
    ]
    found += [
        f"{gid} is graded by no clause and not listed as project_specific"
        for gid in guarantees
        if gid not in mapped and gid not in cov.project_specific
    ]
    return found


def level_remark(clause: Clause, guarantees: dict[str, Guarantee]) -> str:
    """Where the guarantees' level differs from the clause's: stricter or weaker."""
    levels = {guarantees[g].level for g in clause.graded_by if g in guarantees}
    if not levels:
        return ""
    if clause.strength == "MUST" and Level.MUST not in levels:
        return "weaker: graded at SHOULD only"
    if clause.strength in ("SHOULD", "MAY") and Level.MUST in levels:
        return "stricter: graded at MUST"
    return ""


# --- rendering ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(spec: Spec) -> str:
    return spec.id


def _graded(clause: Clause, guarantees: dict[str, Guarantee]) -> str:
    if clause.not_graded:
        return f"**not graded**: {_cell(clause.not_graded)}"
    ids = ", ".join(
        f"`{g}` ({guarantees[g].level})" if g in guarantees else f"`{g}` (?)"
        for g in clause.graded_by
    )
    extras = [r for r in (level_remark(clause, guarantees), clause.note) if r]
    return ids + "".join(f"; {_cell(e)}" for e in extras)


def render(cov: Coverage, guarantees: dict[str, Guarantee]) -> str:
    out = [
        "# Specification coverage",
        "",
        "<!-- Generated by `python -m obsconf.conformance.coverage --write` from "
        "conformance/coverage.yaml and conformance/catalog.yaml: do not edit by hand. -->",
        "",
        "Each normative clause of the specifications obsconf follows, with the guarantees "
        "(`conformance/catalog.yaml`) that grade it, or the reason it is not graded. The "
        "level is the clause's own word; for OpenTelemetry attribute tables Required is "
        "MUST, Conditionally Required is MUST when its condition holds, Recommended is "
        "SHOULD. *stricter* / *weaker* mark a clause graded at another level than its own.",
        "",
        "## Summary",
        "",
        "| specification | version read | clauses | graded | not graded |",
        "|---|---|---|---|---|",
    ]
    total = graded_total = 0
    for spec in cov.specs:
        graded = sum(1 for c in spec.clauses if c.graded_by)
        total += len(spec.clauses)
        graded_total += graded
        out.append(
            f"| [{_cell(spec.title)}](#{_anchor(spec)}) | {_cell(spec.version)} | "
            f"{len(spec.clauses)} | {graded} | {len(spec.clauses) - graded} |"
        )
    out.append(f"| **all** | | {total} | {graded_total} | {total - graded_total} |")
    for spec in cov.specs:
        out += [
            "",
            f'<a id="{_anchor(spec)}"></a>',
            "",
            f"## {spec.title}",
            "",
            f"{_cell(spec.version)} - <{spec.url}>"
            if "://" in spec.url
            else f"{_cell(spec.version)} - [{spec.url}]({spec.url})",
            "",
            "| clause | section | level | the clause | graded by / not graded |",
            "|---|---|---|---|---|",
        ]
        out += [
            f"| `{c.id}` | {_cell(c.section)} | {c.level} | {_cell(c.quote)} | "
            f"{_graded(c, guarantees)} |"
            for c in spec.clauses
        ]
    out += [
        "",
        "## Guarantees and the clauses they grade",
        "",
        "| guarantee | level | clauses |",
        "|---|---|---|",
    ]
    for gid, guarantee in guarantees.items():
        clauses = [c.id for c in cov.clauses if gid in c.graded_by]
        if clauses:
            cell = ", ".join(f"`{c}`" for c in clauses)
        else:
            reason = cov.project_specific.get(gid, "graded by no clause")
            cell = f"project-specific: {_cell(reason)}"
        out.append(f"| `{gid}` | {guarantee.level} | {cell} |")
    return "\n".join(out) + "\n"


def document() -> str:
    return render(coverage(), catalog())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m obsconf.conformance.coverage", description=__doc__
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {DOCUMENT.name}")
    group.add_argument("--check", action="store_true", help=f"exit 1 if {DOCUMENT.name} differs")
    args = parser.parse_args(argv)
    found = problems(coverage(), catalog())
    if found:
        print("coverage.yaml:\n  " + "\n  ".join(found), file=sys.stderr)
        return 1
    text = document()
    if args.write:
        DOCUMENT.write_text(text)
    elif args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(
                f"{DOCUMENT} is stale: run python -m obsconf.conformance.coverage --write",
                file=sys.stderr,
            )
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
