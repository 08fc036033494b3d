"""The fields of a target file, once: names, types, choices, bounds, defaults and what each means.

The checks (target_validate.py) take every field name, choice and bound from here, and the
published JSON Schema (target.schema.json, written by target_schema.py) is generated from
here, so an editor and `obsconf run` agree on what a target may say. What no schema says (a
field required unless another is given, two services of one name, a directory that must
exist, a guarantee id of the catalog) stays with the checks.

A node is a field's kind: `Text`, `Url`, `Seconds`, `Template` (a string holding contract
placeholders), `Fields` (a mapping of known fields), `Entries` (a mapping of free keys),
`Items` (a list), `OneOf` (either form) and `Kinds` (a mapping whose `kind` picks its fields).
`required`: the field must be given; `nullable`: an empty value (`key:` in YAML) means absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TypeVar

from obsconf.conformance.clients.registry import DEFAULT_KIND, adapters
from obsconf.conformance.contract import READY_TIMEOUT
from obsconf.conformance.deviations import DeviationKind
from obsconf.conformance.target_defaults import (
    DEFAULT_CONSUMER_RELATION,
    DEFAULT_FRESHNESS_S,
    DEFAULT_LABELS,
    DEFAULT_LOGS,
    DEFAULT_METRICS,
    DEFAULT_NAMES,
    DEFAULT_SPAN_FLUSH_INTERVAL,
    DEFAULT_SUBJECTS,
    FRESHNESS_SIGNALS,
    ROLES,
    STORE_INGEST_S,
)
from obsconf.stack.binaries import versions
from obsconf.stack.services import PREDEFINED

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
GUARANTEE_ID = r"^[A-Z]+(-[A-Z0-9]+)+$"  # the catalog's ids: MET-DURATION-UNIT
MAX_READY_TIMEOUT = 600.0
CONTRACT = "docs/contract.md"


@dataclass(frozen=True)
class Node:
    doc: str  # what the field means (the schema's description)
    required: bool = field(default=False, kw_only=True)
    nullable: bool = field(default=True, kw_only=True)
    # The name of its definition in the schema, for a node that stands in several places.
    ref: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, kw_only=True)
class Text(Node):
    """A string, not blank unless `blank`; one of `choices` when there are any."""

    choices: tuple[str, ...] = ()
    default: str | None = None
    blank: bool = False


@dataclass(frozen=True, kw_only=True)
class Url(Node):
    schemes: tuple[str, ...] = ("http", "https")


@dataclass(frozen=True, kw_only=True)
class Seconds(Node):
    """A number of seconds in [low, high], or in (low, high] when `low_open`."""

    low: float
    high: float
    low_open: bool = False
    default: float | None = None

    def describe(self) -> str:
        if self.low_open:
            return f"seconds in ({self.low:g}, {self.high:g}]"
        return f"seconds between {self.low:g} and {self.high:g}"


@dataclass(frozen=True, kw_only=True)
class Template(Node):
    """A string whose `{placeholders}` are the contract's; a number is taken as written
    unless `strings_only` (then the string must not be blank either)."""

    strings_only: bool = False


@dataclass(frozen=True, kw_only=True)
class Fields(Node):
    """A mapping of these fields and no others (exactly one of them when `exactly_one`)."""

    fields: Mapping[str, Node]
    exactly_one: bool = False

    def get(self, name: str, kind: type[N]) -> N:
        """The node of field `name`, which is a `kind`."""
        return narrow(self.fields[name], kind)


@dataclass(frozen=True, kw_only=True)
class Entries(Node):
    """A mapping whose keys match `keys` (a regular expression) and whose values are `value`."""

    keys: str
    value: Node


@dataclass(frozen=True, kw_only=True)
class Items(Node):
    item: Node
    min_items: int = 0


@dataclass(frozen=True, kw_only=True)
class OneOf(Node):
    options: tuple[Node, ...]

    def option(self, kind: type[N]) -> N:
        """The first option that is a `kind`."""
        return narrow(next(o for o in self.options if isinstance(o, kind)), kind)


@dataclass(frozen=True, kw_only=True)
class Kinds(Node):
    """A mapping whose `kind` field (default `default`) says which fields it has."""

    default: str
    kinds: Mapping[str, Fields]


N = TypeVar("N", bound=Node)


def narrow(node: Node, kind: type[N]) -> N:
    """`node`, which the caller knows is a `kind` (TypeError if the tree says otherwise)."""
    if not isinstance(node, kind):
        raise TypeError(f"{node.doc!r} is a {type(node).__name__}, not a {kind.__name__}")
    return node


START = OneOf(
    "How the harness starts the service: a predefined start command by name, or a command",
    options=(
        Text("A predefined start command", choices=tuple(PREDEFINED)),
        Fields(
            f"A start command ({CONTRACT}, 2): every string may use the contract's placeholders",
            ref="start_command",
            fields={
                "command": Items(
                    "The program and its arguments (an argv, no shell)",
                    item=Template("One argument; numbers are taken as written", nullable=False),
                    min_items=1,
                    required=True,
                ),
                "cwd": Template(
                    "The working directory, relative to the target file (default: the "
                    "harness's working directory)",
                    strings_only=True,
                ),
                "env": Entries(
                    "Extra environment variables, applied after the contract's own",
                    keys=ENV_NAME,
                    value=Template(
                        "The variable's value; numbers are taken as written", nullable=False
                    ),
                ),
                "ready_timeout": Seconds(
                    "Seconds until GET /health must answer 200",
                    low=1,
                    high=MAX_READY_TIMEOUT,
                    default=READY_TIMEOUT,
                ),
            },
        ),
    ),
)


def _service(role: str) -> Fields:
    return Fields(
        f"The {role} service: reached at `url`, or started by `start` (or `services.start`)",
        fields={
            "name": Text(
                "Its service name: service.name, log file stem, Prometheus job",
                default=DEFAULT_NAMES[role],
            ),
            "url": Url("Where it already runs (then it is not started), e.g. http://host:8000"),
            "start": START,
        },
    )


SERVICES = Fields(
    "The three services: each started by a start command or already running at a URL",
    fields={
        "start": OneOf(
            "The start command of every service that has no `url` or `start` of its own",
            options=START.options,
        ),
        **{role: _service(role) for role in ROLES},
    },
)


def _names(doc: str, defaults: Mapping[str, str], what: str) -> Fields:
    return Fields(
        doc,
        fields={key: Text(f"The {what} `{key}`", default=name) for key, name in defaults.items()},
    )


CAPABILITIES = Fields(
    f"What the implementation does that the suite must know ({CONTRACT}, 8)",
    fields={
        "consumer_relation": Text(
            "parent: a consumer continues the publisher's trace; link: it starts a new trace "
            "whose consume span links to the publish span",
            choices=("parent", "link"),
            default=DEFAULT_CONSUMER_RELATION,
        ),
        "error_hook": Fields(
            "A request that always answers 5xx (without it TRC-ERROR-STATUS is skipped)",
            fields={
                "method": Text(
                    "Its HTTP method", choices=("GET", "POST", "PUT", "DELETE"), required=True
                ),
                "path": Text("Its path on user-service, e.g. /api/fail", required=True),
            },
        ),
        "span_flush_interval": Seconds(
            "Seconds between the services' span exports; a trace is judged once its spans "
            f"stayed the same for this + {STORE_INGEST_S:g} s",
            low=0,
            high=60,
            default=DEFAULT_SPAN_FLUSH_INTERVAL,
            nullable=False,
        ),
        "logs": Text(
            "How the services ship their logs: file (JSON lines on stdout) or otlp (OTLP log "
            "records)",
            choices=("file", "otlp"),
            default=DEFAULT_LOGS,
        ),
        "freshness_s": Fields(
            "LOAD-FRESHNESS p99 limits in seconds, from a request's end to its signal being "
            "queryable",
            fields={
                signal: Seconds(
                    f"The limit for {signal}"
                    + (
                        f" (default {DEFAULT_FRESHNESS_S[signal]:g})"
                        if signal in DEFAULT_FRESHNESS_S
                        else f" (default 3 × (span_flush_interval + {STORE_INGEST_S:g}) + 2)"
                    ),
                    low=0,
                    high=600,
                    low_open=True,
                    default=DEFAULT_FRESHNESS_S.get(signal),
                    nullable=False,
                )
                for signal in FRESHNESS_SIGNALS
            },
        ),
    },
)


def _store(role: str) -> OneOf:
    """`backends.logs` or `backends.traces`: a URL of the default kind, or {kind, url, ...}."""
    default = DEFAULT_KIND[role]
    kinds: dict[str, Fields] = {}
    for kind, adapter in sorted(adapters(role).items()):
        choices: Mapping[str, tuple[str, ...]] = getattr(adapter, "choices", {})
        kinds[kind] = Fields(
            f"A {kind} {role} store",
            fields={
                "kind": Text("The store's product", choices=(kind,), required=kind != default),
                "url": Url("Its base URL (default: the started stack's)"),
                **{
                    option: Text(doc, choices=choices.get(option, ()))
                    for option, doc in adapter.options.items()
                },
            },
        )
    return OneOf(
        f"The {role} store: a {default} URL, or {{kind, url, options}} (default: the started "
        "stack's)",
        options=(
            Url(f"A {default} at this URL"),
            Kinds(f"The {role} store", default=default, kinds=kinds),
        ),
    )


@cache
def target_fields() -> Fields:
    """Every field of a target file (the backends' kinds are the adapters found)."""
    images = tuple(versions()["images"]["upstream"])
    return Fields(
        "An obsconf target: what implementation to grade and where its telemetry lands "
        f"({CONTRACT})",
        fields={
            "name": Text("The implementation's name, shown in reports", required=True),
            "description": Text("What the implementation is, in a line"),
            "services": SERVICES,
            "subjects": _names("The NATS subjects events go to", DEFAULT_SUBJECTS, "subject of"),
            "metrics": _names(f"Metric names ({CONTRACT}, 7)", DEFAULT_METRICS, "name of metric"),
            "labels": _names(f"Label names ({CONTRACT}, 7)", DEFAULT_LABELS, "name of label"),
            "capabilities": CAPABILITIES,
            "backends": Fields(
                "The stack: started here (`start`), or the URLs of one that runs",
                fields={
                    "start": Text(
                        "Which stack the harness starts: local processes, containers, or "
                        "auto (local where its binaries are installed); without it every "
                        "backend URL must be given",
                        choices=("local", "containers", "auto"),
                    ),
                    "prometheus": Url("Prometheus's base URL"),
                    "logs": _store("logs"),
                    "traces": _store("traces"),
                    "nats": Url("The NATS server the suite subscribes to", schemes=("nats",)),
                    "grafana": Url("Grafana's base URL (for links in the report)"),
                    "images": Fields(
                        "Container images by component, for backends.start: containers",
                        fields={
                            component: Text(f"The {component} image", nullable=False)
                            for component in images
                        },
                    ),
                },
            ),
            "faults": Items(
                "Fault modes always asked for, on top of `obsconf run --fault`",
                item=Text("A fault mode", blank=True, nullable=False),
            ),
            "deviations": Entries(
                "Declared deviations by guarantee id (conformance/catalog.yaml)",
                keys=GUARANTEE_ID,
                value=OneOf(
                    "KIND, or {KIND: reason}",
                    options=(
                        Text(
                            "The deviation's kind (a bug needs its reason: {bug: reason})",
                            choices=tuple(k for k in DeviationKind if k != DeviationKind.BUG),
                        ),
                        Fields(
                            "The deviation's kind and why (exactly one kind)",
                            exactly_one=True,
                            fields={
                                DeviationKind.BUG: Text(
                                    "Still runs, expected to fail: the ticket or reason",
                                    nullable=False,
                                ),
                                DeviationKind.MISSING_FEATURE: Text("Not run: why", blank=True),
                                DeviationKind.NOT_APPLICABLE: Text(
                                    "Not run, does not count: why", blank=True
                                ),
                            },
                        ),
                    ),
                    nullable=False,
                ),
            ),
        },
    )
