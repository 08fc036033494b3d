"""The published JSON Schema of target files (obsconf/conformance/target.schema.json): written
by `python -m obsconf.conformance.target_schema --write` from the fields the checks read, kept
current, named by every bundled target, and in agreement with the checks: the same field names
wherever the schema describes a mapping, and nothing the checks accept refused by it."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from obsconf.conformance import target_schema
from obsconf.conformance.target import TargetError, load_target, parse_target

REPO = Path(__file__).resolve().parent.parent
SCHEMA_FILE = REPO / "obsconf" / "conformance" / "target.schema.json"
BUNDLED = [
    *sorted((REPO / "obsconf" / "targets").glob("*.yaml")),
    REPO / "tests" / "foreign_impl" / "target.yaml",
    *sorted(REPO.glob("implementations/*/target*.yaml")),
]
MODELINE = re.compile(r"# yaml-language-server: \$schema=(\S+)")
# A target that loads: what the probes below change one mapping of.
BASE: dict[str, Any] = {
    "name": "x",
    "services": {"start": "reference"},
    "backends": {"start": "local"},
}
UNKNOWN = "zz_unknown"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text())


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema)


def test_the_written_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == target_schema.render(target_schema.schema()), (
        f"{SCHEMA_FILE.name} is stale: run `{target_schema.WRITE}`"
    )


def test_the_command_checks_and_prints_the_schema() -> None:
    module = ["-m", "obsconf.conformance.target_schema"]
    check = subprocess.run(
        [sys.executable, *module, "--check"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert check.returncode == 0, check.stderr
    printed = subprocess.run(
        [sys.executable, *module], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert printed.stdout == SCHEMA_FILE.read_text()


def test_the_schema_is_a_draft_7_schema(schema: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_bundled_target_names_the_schema_and_is_valid_under_it(
    path: Path, validator: jsonschema.Draft7Validator
) -> None:
    first = path.read_text().splitlines()[0]
    modeline = MODELINE.fullmatch(first)
    assert modeline, f"{path}: the first line must be `# yaml-language-server: $schema=...`"
    assert (path.parent / modeline.group(1)).resolve() == SCHEMA_FILE.resolve()
    load_target(path)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_yaml(path))]
    assert not errors


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _mappings(
    node: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every mapping of known fields the schema describes, with its field path (a `kind`
    variant of a store once per kind). Free-keyed mappings (env, deviations) are left out."""
    if "$ref" in node:
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
    for option in node.get("anyOf", []):
        yield from _mappings(option, schema, path)
    if "properties" in node:
        yield path, node
        for name, field in node["properties"].items():
            yield from _mappings(field, schema, (*path, name))


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    if not path:
        return {**data, **value}
    node = data
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return data


def test_the_checks_allow_exactly_the_fields_the_schema_names(schema: dict[str, Any]) -> None:
    """For each mapping the schema describes, a target with one more field there is refused
    by the checks naming exactly the schema's fields as the allowed ones."""
    probed = set()
    for path, node in _mappings(schema, schema):
        assert node["additionalProperties"] is False, path
        names = sorted(node["properties"])
        probe: dict[str, Any] = {UNKNOWN: 1}
        kind = node["properties"].get("kind", {}).get("enum", [None])[0]
        if kind is not None:
            probe["kind"] = kind
        where = ".".join(path) or "target"
        with pytest.raises(TargetError) as refused:
            parse_target(_set(BASE, path, probe), "t.yaml")
        expected = f"t.yaml: {where}.{UNKNOWN}: unknown field (allowed: {', '.join(names)})"
        assert str(refused.value) == expected
        probed.add(where)
    assert {
        "target",
        "services",
        "services.start",
        "services.user",
        "services.user.start",
        "subjects",
        "metrics",
        "labels",
        "capabilities",
        "capabilities.error_hook",
        "capabilities.freshness_s",
        "backends",
        "backends.logs",
        "backends.traces",
        "backends.images",
    } <= probed


BAD_VALUES: list[Any] = [None, 0, -1, 0.5, 700, True, "", " ", "x", "ftp://x", "{nope}"]
BAD_VALUES += ["{port", "http://h/", "nats://n", [], ["x"], [1], {}, {UNKNOWN: 1}]
# What a schema cannot say: rules between fields, the file system, the catalog. A mutated
# target the schema accepts may be refused by the checks only for one of these.
BEYOND_THE_SCHEMA = (
    "required unless",
    "not both",
    "names two services",
    "no such directory",
    "the program must not be empty",
    "unknown guarantee id",
    "starting services needs backends.start",
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict | list):
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            yield from _paths(child, (*path, key))


def _replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(REPO)))
def test_the_schema_refuses_nothing_the_checks_accept(
    path: Path, validator: jsonschema.Draft7Validator
) -> None:
    """Every field of a bundled target, replaced by each of a set of wrong values: where the
    checks accept the result the schema does too, and where the schema accepts it the checks
    refuse it only for a rule beyond a schema."""
    data = _yaml(path)
    mutated = [_replaced(data, p, value) for p in _paths(data) if p for value in BAD_VALUES]
    assert len(mutated) > 100
    for target in mutated:
        try:
            parse_target(target, str(path), path)
        except TargetError as error:
            if validator.is_valid(target):
                assert any(rule in str(error) for rule in BEYOND_THE_SCHEMA), str(error)
        else:
            errors = [e.message for e in validator.iter_errors(target)]
            assert not errors, target
