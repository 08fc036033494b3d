"""The checks of a target file: every field's type, range and choices (from target_fields.py)
and the rules between fields, each failure a TargetError naming the file and the field path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from obsconf.conformance.catalog import catalog
from obsconf.conformance.clients.registry import StoreSpec
from obsconf.conformance.contract import (
    READY_TIMEOUT,
    StartCommand,
    TemplateError,
    placeholders_in,
)
from obsconf.conformance.deviations import parse_deviations
from obsconf.conformance.target_defaults import (
    DEFAULT_CONSUMER_RELATION,
    DEFAULT_LABELS,
    DEFAULT_LOGS,
    DEFAULT_METRICS,
    DEFAULT_NAMES,
    DEFAULT_SUBJECTS,
    ROLES,
    default_freshness,
)
from obsconf.conformance.target_fields import (
    Entries,
    Fields,
    Items,
    Kinds,
    OneOf,
    Seconds,
    Template,
    Text,
    Url,
    narrow,
    target_fields,
)
from obsconf.conformance.target_model import BackendsSpec, Hook, ServiceSpec, Target, TargetError
from obsconf.stack.services import PREDEFINED


class Reader:
    """Walks the YAML with a path, so every error says where it is."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> TargetError:
        return TargetError(f"{self.source}: {path}: {message}")

    def fields(self, value: Any, path: str, node: Fields) -> dict[str, Any]:
        """A mapping of `node`'s fields and no others (nothing given: empty)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - set(node.fields))
        if unknown:
            raise self.fail(
                f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(node.fields))})"
            )
        return value

    def text(self, value: Any, path: str, node: Text) -> str | None:
        """A string that is not blank, one of the node's choices if it has any."""
        if value is None:
            if node.required or not node.nullable:
                raise self.fail(path, "required field is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, got {value!r}")
        if node.choices and value not in node.choices:
            raise self.fail(path, f"must be one of {', '.join(node.choices)}, got {value!r}")
        return value

    def given_text(self, value: Any, path: str, node: Text) -> str:
        """`text` of a field that must be given."""
        text = self.text(value, path, node)
        if text is None:
            raise self.fail(path, "required field is missing")
        return text

    def url(self, value: Any, path: str, node: Url) -> str | None:
        """A URL of one of the node's schemes, without a trailing slash."""
        text = self.text(value, path, Text(node.doc))
        schemes = node.schemes
        if text is not None and not any(text.startswith(f"{s}://") for s in schemes):
            raise self.fail(path, f"must be a {'/'.join(schemes)} URL, got {text!r}")
        return text.rstrip("/") if text else None

    def seconds(self, value: Any, path: str, node: Seconds) -> float:
        """A number of seconds within the node's bounds."""
        low, high = node.low, node.high
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (low < value if node.low_open else low <= value)
            or not value <= high
        ):
            raise self.fail(path, f"must be {node.describe()}, got {value!r}")
        return float(value)

    def template(self, value: Any, path: str, node: Template) -> str:
        """A string (numbers are taken as written unless the node says strings only) whose
        placeholders are all the contract's."""
        if node.strings_only:
            value = self.given_text(value, path, Text(node.doc))
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, f"must be a string, got {type(value).__name__} {value!r}")
        text = str(value)
        try:
            placeholders_in(text)
        except TemplateError as error:
            raise self.fail(path, str(error)) from None
        return text

    def store(self, value: Any, path: str, node: OneOf) -> StoreSpec | None:
        """A URL (the default kind), or {kind, url, <the kind's options>}."""
        if value is None:
            return None
        kinds = node.option(Kinds)
        if isinstance(value, str):
            return StoreSpec(kinds.default, self.url(value, path, node.option(Url)))
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a URL or a mapping, got {type(value).__name__}")
        named = self.text(value.get("kind"), f"{path}.kind", Text("", choices=tuple(kinds.kinds)))
        kind = named or kinds.default
        fields = kinds.kinds[kind]
        raw = self.fields(value, path, fields)
        options = {
            key: self.given_text(raw[key], f"{path}.{key}", fields.get(key, Text))
            for key in fields.fields
            if key not in ("kind", "url") and raw.get(key) is not None
        }
        return StoreSpec(
            kind, self.url(raw.get("url"), f"{path}.url", fields.get("url", Url)), options
        )

    def start(self, value: Any, path: str, base: Path, node: OneOf) -> StartCommand | None:
        """A start command: a predefined one by name, or {command, cwd, env, ready_timeout}."""
        if value is None:
            return None
        if isinstance(value, str):
            return PREDEFINED[self.given_text(value, path, node.option(Text))]
        spec = node.option(Fields)
        raw = self.fields(value, path, spec)
        argv = raw.get("command")
        items = spec.get("command", Items)
        if argv is None:
            raise self.fail(f"{path}.command", "required field is missing")
        if not isinstance(argv, list) or len(argv) < items.min_items:
            raise self.fail(
                f"{path}.command",
                f"must be a non-empty list (the program and its arguments), got {argv!r}",
            )
        arg = narrow(items.item, Template)
        command = tuple(self.template(a, f"{path}.command[{i}]", arg) for i, a in enumerate(argv))
        if not command[0].strip():
            raise self.fail(f"{path}.command[0]", "the program must not be empty")
        cwd = None
        if raw.get("cwd") is not None:
            cwd = self.template(raw["cwd"], f"{path}.cwd", spec.get("cwd", Template))
            if not placeholders_in(cwd):
                directory = base / cwd
                if not directory.is_dir():
                    raise self.fail(f"{path}.cwd", f"no such directory: {directory}")
                cwd = str(directory.resolve())
        env = {}
        variables = spec.get("env", Entries)
        value_node = narrow(variables.value, Template)
        raw_env = {} if raw.get("env") is None else raw["env"]
        if not isinstance(raw_env, dict):
            raise self.fail(f"{path}.env", f"must be a mapping, got {type(raw_env).__name__}")
        for key, text in raw_env.items():
            if not isinstance(key, str) or not re.match(variables.keys, key):
                raise self.fail(f"{path}.env.{key}", "not a valid environment variable name")
            env[key] = self.template(text, f"{path}.env.{key}", value_node)
        timeout = READY_TIMEOUT
        if raw.get("ready_timeout") is not None:
            timeout = self.seconds(
                raw["ready_timeout"], f"{path}.ready_timeout", spec.get("ready_timeout", Seconds)
            )
        return StartCommand(command, cwd, env, timeout, origin=path)


def _services(
    r: Reader, value: Any, base: Path, node: Fields
) -> tuple[dict[str, ServiceSpec], StartCommand | None]:
    """`services`: each role's spec, and the shared start command (None: none given)."""
    raw = r.fields(value, "services", node)
    shared = r.start(raw.get("start"), "services.start", base, node.get("start", OneOf))
    services: dict[str, ServiceSpec] = {}
    for role in ROLES:
        where = f"services.{role}"
        fields = node.get(role, Fields)
        given = r.fields(raw.get(role), where, fields)
        url = r.url(given.get("url"), f"{where}.url", fields.get("url", Url))
        own = r.start(given.get("start"), f"{where}.start", base, fields.get("start", OneOf))
        if url is not None and own is not None:
            raise r.fail(
                f"{where}.url",
                f"a service is either reached at a url or started by {where}.start, not both",
            )
        if url is None and own is None and shared is None:
            raise r.fail(
                f"{where}.url",
                f"required unless services.start or {where}.start says how to start it",
            )
        services[role] = ServiceSpec(
            role,
            r.text(given.get("name"), f"{where}.name", fields.get("name", Text))
            or DEFAULT_NAMES[role],
            url,
            own or (shared if url is None else None),  # a url keeps services.start off it
        )
    names = [s.name for s in services.values()]
    for role, spec in services.items():
        if names.count(spec.name) > 1:
            raise r.fail(f"services.{role}.name", f"{spec.name!r} names two services")
    return services, shared


def _backends(r: Reader, value: Any, node: Fields) -> BackendsSpec:
    raw = r.fields(value, "backends", node)
    start = r.text(raw.get("start"), "backends.start", node.get("start", Text))
    images = node.get("images", Fields)
    raw_images = r.fields(raw.get("images"), "backends.images", images)
    backends = BackendsSpec(
        start=start,
        prometheus=r.url(raw.get("prometheus"), "backends.prometheus", node.get("prometheus", Url)),
        logs=r.store(raw.get("logs"), "backends.logs", node.get("logs", OneOf)),
        traces=r.store(raw.get("traces"), "backends.traces", node.get("traces", OneOf)),
        nats=r.url(raw.get("nats"), "backends.nats", node.get("nats", Url)),
        grafana=r.url(raw.get("grafana"), "backends.grafana", node.get("grafana", Url)),
        images={
            k: r.given_text(v, f"backends.images.{k}", images.get(k, Text))
            for k, v in raw_images.items()
        },
    )
    if start is None:
        for key in ("prometheus", "logs", "traces"):
            given = getattr(backends, key)
            if given is None or getattr(given, "url", given) is None:
                where = f"backends.{key}" if given is None else f"backends.{key}.url"
                raise r.fail(where, "required unless backends.start names a stack")
    return backends


def parse_target(data: Any, source: str = "<target>", path: Path | None = None) -> Target:
    """The target `data` (what YAML gave) describes; TargetError naming the field at fault.
    `path` is the file it came from: working directories are relative to it."""
    r = Reader(source)
    spec = target_fields()
    top = r.fields(data, "target", spec)
    name = r.given_text(top.get("name"), "name", spec.get("name", Text))
    r.text(top.get("description"), "description", spec.get("description", Text))

    base = path.parent if path is not None else Path.cwd()
    services, shared = _services(r, top.get("services"), base, spec.get("services", Fields))

    def names(key: str, defaults: dict[str, str]) -> dict[str, str]:
        node = spec.get(key, Fields)
        given = r.fields(top.get(key), key, node)
        return {
            k: r.text(given.get(k), f"{key}.{k}", node.get(k, Text)) or v
            for k, v in defaults.items()
        }

    node = spec.get("capabilities", Fields)
    caps = r.fields(top.get("capabilities"), "capabilities", node)
    logs = r.text(caps.get("logs"), "capabilities.logs", node.get("logs", Text)) or DEFAULT_LOGS
    flush_node = node.get("span_flush_interval", Seconds)
    flush = r.seconds(
        caps.get("span_flush_interval", flush_node.default),
        "capabilities.span_flush_interval",
        flush_node,
    )
    freshness = default_freshness(flush)
    limits = node.get("freshness_s", Fields)
    given = r.fields(caps.get("freshness_s"), "capabilities.freshness_s", limits)
    for signal, limit in given.items():
        where = f"capabilities.freshness_s.{signal}"
        freshness[signal] = r.seconds(limit, where, limits.get(signal, Seconds))
    relation = (
        r.text(
            caps.get("consumer_relation"),
            "capabilities.consumer_relation",
            node.get("consumer_relation", Text),
        )
        or DEFAULT_CONSUMER_RELATION
    )
    hook = None
    if caps.get("error_hook") is not None:
        where = "capabilities.error_hook"
        fields = node.get("error_hook", Fields)
        raw_hook = r.fields(caps["error_hook"], where, fields)
        hook = Hook(
            r.given_text(raw_hook.get("method"), f"{where}.method", fields.get("method", Text)),
            r.given_text(raw_hook.get("path"), f"{where}.path", fields.get("path", Text)),
        )

    backends = _backends(r, top.get("backends"), spec.get("backends", Fields))
    started = [role for role, service in services.items() if service.start is not None]
    if started and backends.start is None:
        where = "services.start" if shared is not None else f"services.{started[0]}.start"
        raise r.fail(
            where,
            "starting services needs backends.start: local, containers or auto (the harness "
            "must know the stack's log and scrape directories)",
        )

    faults = [] if top.get("faults") is None else top["faults"]
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        raise r.fail("faults", "must be a list of fault names")

    return Target(
        name=name,
        path=path,
        services=services,
        subjects=names("subjects", DEFAULT_SUBJECTS),
        metrics=names("metrics", DEFAULT_METRICS),
        labels=names("labels", DEFAULT_LABELS),
        consumer_relation=relation,
        error_hook=hook,
        backends=backends,
        faults=tuple(faults),
        span_flush_interval=flush,
        logs=logs,
        deviations=parse_deviations(top.get("deviations"), catalog(), r.fail),
        freshness_s=freshness,
    )
