"""The map lives in the repository: every path the README and docs/ name in a link or in
backticks that looks like a file of ours exists, and none points outside the checkout."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)[^)]*\)")
TOP = ("conformance", "stack", "reports", "fixtures", "reference_services", "targets", "tests",
       "bench", "docs", "implementations", "deploy", "obsconf")  # fmt: skip
NAMED = re.compile(rf"`((?:{'|'.join(TOP)})/[\w./-]+\.(?:py|yaml|yml|md|toml|json))`")


def _named(document: Path) -> list[str]:
    text = document.read_text()
    return [m for m in LINK.findall(text) if "://" not in m] + NAMED.findall(text)


def test_no_document_points_outside_the_repository() -> None:
    outside = {
        str(d.relative_to(REPO)): [p for p in _named(d) if ".." in Path(p).parts] for d in DOCUMENTS
    }
    assert not {d: p for d, p in outside.items() if p}, outside
    for document in DOCUMENTS:
        assert "../shared" not in document.read_text(), document


def test_every_file_the_documents_name_exists() -> None:
    missing = {}
    for document in DOCUMENTS:
        for path in _named(document):
            if "*" in path or "<" in path:
                continue
            if not ((document.parent / path).exists() or (REPO / path).exists()):
                missing.setdefault(str(document.relative_to(REPO)), []).append(path)
    assert not missing, missing
