"""The checks of a target file: every field's type, range and choices, and the rules between
fields, each failure a TargetError naming the file and the path to the field at fault."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from obsconf.conformance.catalog import catalog
from obsconf.conformance.clients.registry import DEFAULT_KIND, StoreSpec, adapters
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
    DEFAULT_SPAN_FLUSH_INTERVAL,
    DEFAULT_SUBJECTS,
    FRESHNESS_SIGNALS,
    ROLES,
    default_freshness,
)
from obsconf.conformance.target_model import BackendsSpec, Hook, ServiceSpec, Target, TargetError
from obsconf.stack.binaries import versions
from obsconf.stack.services import PREDEFINED

IMAGE_COMPONENTS = tuple(versions()["images"]["upstream"])
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_READY_TIMEOUT = 600.0


class _Reader:
    """Walks the YAML with a path, so every error says where it is."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> TargetError:
        return TargetError(f"{self.source}: {path}: {message}")

    def mapping(self, value: Any, path: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(
                f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})"
            )
        return value

    def string(
        self, value: Any, path: str, required: bool = False, choices: tuple = ()
    ) -> str | None:
        if value is None:
            if required:
                raise self.fail(path, "required field is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(
        self, value: Any, path: str, schemes: tuple[str, ...] = ("http", "https")
    ) -> str | None:
        text = self.string(value, path)
        if text is not None and not any(text.startswith(f"{s}://") for s in schemes):
            raise self.fail(path, f"must be a {'/'.join(schemes)} URL, got {text!r}")
        return text.rstrip("/") if text else None

    def number(self, value: Any, path: str, low: float, high: float, unit: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.fail(path, f"must be {unit} between {low:g} and {high:g}, got {value!r}")
        return float(value)

    def template(self, value: Any, path: str) -> str:
        """A string (numbers are taken as written) whose placeholders are all known."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(path, f"must be a string, got {type(value).__name__} {value!r}")
        text = str(value)
        try:
            placeholders_in(text)
        except TemplateError as error:
            raise self.fail(path, str(error)) from None
        return text

    def store(self, value: Any, role: str) -> StoreSpec | None:
        """`backends.<role>`: a URL (the default kind), or {kind, url, <adapter options>}."""
        path = f"backends.{role}"
        if value is None:
            return None
        if isinstance(value, str):
            return StoreSpec(DEFAULT_KIND[role], self.url(value, path))
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a URL or a mapping, got {type(value).__name__}")
        known = adapters(role)
        kind = self.string(value.get("kind"), f"{path}.kind", choices=tuple(sorted(known)))
        adapter = known[kind or DEFAULT_KIND[role]]
        raw = self.mapping(value, path, {"kind", "url", *adapter.options})
        choices = getattr(adapter, "choices", {})
        options = {
            key: self.string(raw[key], f"{path}.{key}", choices=choices.get(key, ()))
            for key in adapter.options
            if raw.get(key) is not None
        }
        return StoreSpec(adapter.kind, self.url(raw.get("url"), f"{path}.url"), options)

    def start(self, value: Any, path: str, base: Path) -> StartCommand | None:
        """A start command: a predefined one by name, or {command, cwd, env, ready_timeout}."""
        if value is None:
            return None
        if isinstance(value, str):
            return PREDEFINED[self.string(value, path, choices=tuple(PREDEFINED))]
        raw = self.mapping(value, path, {"command", "cwd", "env", "ready_timeout"})
        argv = raw.get("command")
        if argv is None:
            raise self.fail(f"{path}.command", "required field is missing")
        if not isinstance(argv, list) or not argv:
            raise self.fail(
                f"{path}.command",
                f"must be a non-empty list (the program and its arguments), got {argv!r}",
            )
        command = tuple(self.template(a, f"{path}.command[{i}]") for i, a in enumerate(argv))
        if not command[0].strip():
            raise self.fail(f"{path}.command[0]", "the program must not be empty")
        cwd = None
        if raw.get("cwd") is not None:
            cwd = self.template(self.string(raw["cwd"], f"{path}.cwd"), f"{path}.cwd")
            if not placeholders_in(cwd):
                directory = base / cwd
                if not directory.is_dir():
                    raise self.fail(f"{path}.cwd", f"no such directory: {directory}")
                cwd = str(directory.resolve())
        env = {}
        raw_env = raw.get("env") or {}
        if not isinstance(raw_env, dict):
            raise self.fail(f"{path}.env", f"must be a mapping, got {type(raw_env).__name__}")
        for key, text in raw_env.items():
            if not isinstance(key, str) or not ENV_NAME.match(key):
                raise self.fail(f"{path}.env.{key}", "not a valid environment variable name")
            env[key] = self.template(text, f"{path}.env.{key}")
        timeout = READY_TIMEOUT
        if raw.get("ready_timeout") is not None:
            timeout = self.number(
                raw["ready_timeout"], f"{path}.ready_timeout", 1, MAX_READY_TIMEOUT, "seconds"
            )
        return StartCommand(command, cwd, env, timeout, origin=path)


def parse_target(data: Any, source: str = "<target>", path: Path | None = None) -> Target:
    r = _Reader(source)
    top = r.mapping(
        data,
        "target",
        {
            "name",
            "services",
            "subjects",
            "metrics",
            "labels",
            "capabilities",
            "backends",
            "faults",
            "description",
            "deviations",
        },
    )
    name = r.string(top.get("name"), "name", required=True)

    base = path.parent if path is not None else Path.cwd()
    services_raw = r.mapping(top.get("services"), "services", {"start", *ROLES})
    shared = r.start(services_raw.get("start"), "services.start", base)
    services = {}
    for role in ROLES:
        where = f"services.{role}"
        spec = r.mapping(services_raw.get(role), where, {"name", "url", "start"})
        url = r.url(spec.get("url"), f"{where}.url")
        own = r.start(spec.get("start"), f"{where}.start", base)
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
            r.string(spec.get("name"), f"{where}.name") or DEFAULT_NAMES[role],
            url,
            own or (shared if url is None else None),  # a url keeps services.start off it
        )
    names = [s.name for s in services.values()]
    for role, spec in services.items():
        if names.count(spec.name) > 1:
            raise r.fail(f"services.{role}.name", f"{spec.name!r} names two services")

    def overrides(key: str, defaults: dict[str, str]) -> dict[str, str]:
        given = r.mapping(top.get(key), key, set(defaults))
        return {k: r.string(given.get(k), f"{key}.{k}") or v for k, v in defaults.items()}

    caps = r.mapping(
        top.get("capabilities"),
        "capabilities",
        {"consumer_relation", "error_hook", "span_flush_interval", "logs", "freshness_s"},
    )
    logs = r.string(caps.get("logs"), "capabilities.logs", choices=("file", "otlp")) or DEFAULT_LOGS
    flush = caps.get("span_flush_interval", DEFAULT_SPAN_FLUSH_INTERVAL)
    if isinstance(flush, bool) or not isinstance(flush, int | float) or not 0 <= flush <= 60:
        raise r.fail(
            "capabilities.span_flush_interval", f"must be seconds between 0 and 60, got {flush!r}"
        )
    freshness = default_freshness(float(flush))
    given = r.mapping(caps.get("freshness_s"), "capabilities.freshness_s", set(FRESHNESS_SIGNALS))
    for signal, limit in given.items():
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not 0 < limit <= 600:
            raise r.fail(
                f"capabilities.freshness_s.{signal}", f"must be seconds in (0, 600], got {limit!r}"
            )
        freshness[signal] = float(limit)
    relation = (
        r.string(
            caps.get("consumer_relation"),
            "capabilities.consumer_relation",
            choices=("parent", "link"),
        )
        or DEFAULT_CONSUMER_RELATION
    )
    hook = None
    if caps.get("error_hook") is not None:
        raw_hook = r.mapping(caps["error_hook"], "capabilities.error_hook", {"method", "path"})
        hook = Hook(
            r.string(
                raw_hook.get("method"),
                "capabilities.error_hook.method",
                required=True,
                choices=("GET", "POST", "PUT", "DELETE"),
            ),
            r.string(raw_hook.get("path"), "capabilities.error_hook.path", required=True),
        )

    raw_backends = r.mapping(
        top.get("backends"),
        "backends",
        {"start", "prometheus", "logs", "traces", "nats", "grafana", "images"},
    )
    start_backends = r.string(
        raw_backends.get("start"), "backends.start", choices=("local", "containers", "auto")
    )
    raw_images = r.mapping(raw_backends.get("images"), "backends.images", set(IMAGE_COMPONENTS))
    images = {k: r.string(v, f"backends.images.{k}", required=True) for k, v in raw_images.items()}
    backends = BackendsSpec(
        start=start_backends,
        prometheus=r.url(raw_backends.get("prometheus"), "backends.prometheus"),
        logs=r.store(raw_backends.get("logs"), "logs"),
        traces=r.store(raw_backends.get("traces"), "traces"),
        nats=r.url(raw_backends.get("nats"), "backends.nats", ("nats",)),
        grafana=r.url(raw_backends.get("grafana"), "backends.grafana"),
        images=images,
    )
    if start_backends is None:
        for key in ("prometheus", "logs", "traces"):
            given = getattr(backends, key)
            if given is None or getattr(given, "url", given) is None:
                where = f"backends.{key}" if given is None else f"backends.{key}.url"
                raise r.fail(where, "required unless backends.start names a stack")
    started = [role for role, spec in services.items() if spec.start is not None]
    if started and start_backends is None:
        where = "services.start" if shared is not None else f"services.{started[0]}.start"
        raise r.fail(
            where,
            "starting services needs backends.start: local, containers or auto (the harness "
            "must know the stack's log and scrape directories)",
        )

    faults = top.get("faults") or []
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        raise r.fail("faults", "must be a list of fault names")

    return Target(
        name=name or "",
        path=path,
        services=services,
        subjects=overrides("subjects", DEFAULT_SUBJECTS),
        metrics=overrides("metrics", DEFAULT_METRICS),
        labels=overrides("labels", DEFAULT_LABELS),
        consumer_relation=relation,
        error_hook=hook,
        backends=backends,
        faults=tuple(faults),
        span_flush_interval=float(flush),
        logs=logs,
        deviations=parse_deviations(top.get("deviations"), catalog(), r.fail),
        freshness_s=freshness,
    )
