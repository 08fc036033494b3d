"""The JSON Schema of a target file, generated from the fields the checks read (target_fields.py).

    python -m obsconf.conformance.target_schema            # print it
    python -m obsconf.conformance.target_schema --write    # (re)write target.schema.json
    python -m obsconf.conformance.target_schema --check    # exit 1 if the file is stale

The file is package data beside this module; a target file names it on its first line
(`# yaml-language-server: $schema=<relative path>`) so that an editor checks it while it is
written. Draft 7, which editors' YAML plugins read. The schema says what each field may hold;
the rules between fields (a service's `url` or a start command, backend URLs unless
`backends.start`, one name per service), a `cwd` that exists and a guarantee id of the catalog
are the checks' alone, so a file the schema accepts may still be refused when it is loaded,
never the reverse (tests/test_target_schema.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from obsconf.conformance.contract import BUILD_KEY, BUILD_PLACEHOLDER, PLACEHOLDERS
from obsconf.conformance.target_fields import (
    Entries,
    Fields,
    Items,
    Kinds,
    Node,
    OneOf,
    Seconds,
    Template,
    Text,
    Url,
    target_fields,
)
from obsconf.stack.native import NATIVE

SCHEMA_FILE = Path(__file__).with_name("target.schema.json")
DRAFT = "http://json-schema.org/draft-07/schema#"
NOT_BLANK = r"\S"
WRITE = "python -m obsconf.conformance.target_schema --write"

Schema = dict[str, Any]


def placeholder_pattern() -> str:
    """A string whose every `{...}` is a contract placeholder (`{{` and `}}` literal braces)."""
    names = [name for name in PLACEHOLDERS if name != BUILD_PLACEHOLDER]
    builds = sorted(NATIVE)
    for name in [*names, *builds]:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):  # written into the pattern unescaped
            raise ValueError(f"placeholder or build name {name!r} needs escaping")
    known = "|".join([*names, BUILD_KEY + r"\[(?:" + "|".join(builds) + r")\]"])
    return r"^(?:[^{}]|\{\{|\}\}|\{(?:" + known + r")\})*$"


class _Writer:
    """Turns nodes into schemas; nodes with a `ref` become definitions."""

    def __init__(self) -> None:
        self.definitions: dict[str, Schema] = {}
        self.placeholders = placeholder_pattern()

    def field(self, node: Node) -> Schema:
        """The node as a field's value: null allowed where the checks take it as absent."""
        schema = self.node(node)
        if not node.nullable or node.required:
            return schema
        if "$ref" in schema:
            return {"anyOf": [schema, {"type": "null"}]}
        schema = dict(schema)
        if "anyOf" in schema:
            schema["anyOf"] = [*schema["anyOf"], {"type": "null"}]
            return schema
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        kinds = schema["type"]
        schema["type"] = [*(kinds if isinstance(kinds, list) else [kinds]), "null"]
        return schema

    def node(self, node: Node) -> Schema:
        if node.ref is None:
            return self.shape(node)
        if node.ref not in self.definitions:
            self.definitions[node.ref] = self.shape(node)
        return {"$ref": f"#/definitions/{node.ref}"}

    def shape(self, node: Node) -> Schema:
        schema: Schema = {"description": node.doc} if node.doc else {}
        if isinstance(node, Text):
            schema["type"] = "string"
            if node.choices:
                schema["enum"] = list(node.choices)
            elif not node.blank:
                schema["pattern"] = NOT_BLANK
            if node.default is not None:
                schema["default"] = node.default
        elif isinstance(node, Url):
            schema["type"] = "string"
            schema["pattern"] = "^(?:" + "|".join(node.schemes) + ")://"
        elif isinstance(node, Seconds):
            schema["type"] = "number"
            schema["exclusiveMinimum" if node.low_open else "minimum"] = node.low
            schema["maximum"] = node.high
            if node.default is not None:
                schema["default"] = node.default
        elif isinstance(node, Template):
            if node.strings_only:
                schema["type"] = "string"
                schema["allOf"] = [{"pattern": NOT_BLANK}, {"pattern": self.placeholders}]
            else:
                schema["type"] = ["string", "number"]
                schema["pattern"] = self.placeholders
        elif isinstance(node, Fields):
            schema["type"] = "object"
            schema["properties"] = {name: self.field(f) for name, f in node.fields.items()}
            schema["additionalProperties"] = False
            required = [name for name, f in node.fields.items() if f.required]
            if required:
                schema["required"] = required
            if node.exactly_one:
                schema["minProperties"] = schema["maxProperties"] = 1
        elif isinstance(node, Entries):
            schema["type"] = "object"
            schema["propertyNames"] = {"pattern": node.keys}
            schema["additionalProperties"] = self.field(node.value)
        elif isinstance(node, Items):
            schema["type"] = "array"
            schema["items"] = self.field(node.item)
            if node.min_items:
                schema["minItems"] = node.min_items
        elif isinstance(node, OneOf):
            schema["anyOf"] = []
            for option in node.options:  # a Kinds option's variants are options of their own
                variants = self.node(option)
                schema["anyOf"] += variants["anyOf"] if isinstance(option, Kinds) else [variants]
        elif isinstance(node, Kinds):
            schema["anyOf"] = [self.node(fields) for fields in node.kinds.values()]
        else:
            raise TypeError(f"no schema for a {type(node).__name__}")
        return schema


def schema() -> Schema:
    """The JSON Schema of a target file."""
    writer = _Writer()
    body = writer.shape(target_fields())
    return {
        "$schema": DRAFT,
        "$comment": f"Generated by `{WRITE}` from obsconf/conformance/target_fields.py: do not "
        "edit by hand.",
        "title": "obsconf target",
        **body,
        "definitions": writer.definitions,
    }


def render(document: Schema) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def stale() -> bool:
    """Whether target.schema.json differs from what the fields generate."""
    try:
        return SCHEMA_FILE.read_text() != render(schema())
    except FileNotFoundError:
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m obsconf.conformance.target_schema",
        description="The JSON Schema of a target file, generated from target_fields.py.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write {SCHEMA_FILE.name}")
    action.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    if args.write:
        SCHEMA_FILE.write_text(render(schema()))
        print(f"wrote {SCHEMA_FILE}")
    elif args.check:
        if stale():
            print(f"{SCHEMA_FILE} is stale: run `{WRITE}`", file=sys.stderr)
            return 1
        print(f"{SCHEMA_FILE} is current")
    else:
        sys.stdout.write(render(schema()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
