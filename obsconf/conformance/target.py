"""Target files: what implementation to grade and where its telemetry lands.

A target names the three services (started by the harness through start commands, or already
running at URLs), the NATS subjects, the metric and label names, capabilities (consumer spans
linked instead of parented, a hook that answers 5xx), the backends (the local stack, or URLs)
and the deviations it declares per guarantee (known bug, missing feature, not applicable). A
malformed file is rejected before anything starts, with the path to the field at fault.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from obsconf.conformance.catalog import catalog
from obsconf.conformance.clients.registry import DEFAULT_KIND, StoreSpec, adapters
from obsconf.conformance.contract import (
    READY_TIMEOUT,
    StartCommand,
    TemplateError,
    placeholders_in,
)
from obsconf.conformance.deviations import Deviation, parse_deviations
from obsconf.stack.binaries import versions
from obsconf.stack.services import PREDEFINED

ROLES = ("user", "order", "inventory")
DEFAULT_NAMES = {"user": "user-service", "order": "order-service", "inventory": "inventory-service"}
DEFAULT_METRICS = {
    "requests": "http_requests_total",
    "duration": "http_request_duration_seconds",
    "log_records": "log_records_total",
    "users_created": "users_created_total",
    "orders_created": "orders_created_total",
    "welcome_orders_created": "welcome_orders_created_total",
    "events_published": "events_published_total",
    "events_consumed": "events_consumed_total",
}
DEFAULT_LABELS = {"service": "service", "method": "method", "route": "endpoint", "status": "status"}
IMAGE_COMPONENTS = tuple(versions()["images"]["upstream"])
DEFAULT_SPAN_FLUSH_INTERVAL = 5.0  # OTEL_BSP_SCHEDULE_DELAY's default
STORE_INGEST_S = 0.8  # from export to queryable in the trace store, measured on Jaeger here
# LOAD-FRESHNESS: p99 seconds from a request's end to its signal being queryable, a few times
# the floor (1 s scrapes; shipper + log store ingest; span flush + ingest + two NATS hops).
FRESHNESS_SIGNALS = ("metrics", "logs", "traces")
DEFAULT_FRESHNESS_S = {"metrics": 3.0, "logs": 10.0}  # log path measured here: ~3 s


def default_freshness(span_flush_interval: float) -> dict[str, float]:
    return {**DEFAULT_FRESHNESS_S, "traces": 3 * (span_flush_interval + STORE_INGEST_S) + 2}


DEFAULT_SUBJECTS = {"user_created": "user.created", "order_created": "order.created"}
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_READY_TIMEOUT = 600.0


class TargetError(ValueError):
    """The target file is malformed; the message names the file and the field path."""


@dataclass(frozen=True)
class ServiceSpec:
    role: str
    name: str
    url: str | None  # None: started by the harness with `start`
    start: StartCommand | None = None


@dataclass(frozen=True)
class Hook:
    method: str
    path: str


@dataclass(frozen=True)
class BackendsSpec:
    start: str | None  # "local", "containers", "auto", or None (use the URLs)
    prometheus: str | None = None
    logs: StoreSpec | None = None  # None: the started stack's VictoriaLogs
    traces: StoreSpec | None = None  # None: the started stack's Jaeger
    nats: str | None = None
    grafana: str | None = None
    images: dict[str, str] = field(default_factory=dict)  # component -> image (containers)


@dataclass(frozen=True)
class Target:
    name: str
    path: Path | None
    services: dict[str, ServiceSpec]
    subjects: dict[str, str]
    metrics: dict[str, str]
    labels: dict[str, str]
    consumer_relation: str  # "parent" or "link"
    error_hook: Hook | None
    backends: BackendsSpec
    faults: tuple[str, ...] = field(default=())
    # How often the services' span exporters flush (the OpenTelemetry SDK default is 5 s):
    # a trace is judged only once its spans stayed the same for longer than this.
    span_flush_interval: float = DEFAULT_SPAN_FLUSH_INTERVAL
    # How the implementation ships its logs: "file" (JSON lines on stdout, tailed) or "otlp".
    logs: str = "file"
    # Declared deviations by guarantee id (conformance/deviations.py).
    deviations: dict[str, Deviation] = field(default_factory=dict)
    # LOAD-FRESHNESS thresholds by signal (`capabilities.freshness_s`; `default_freshness`).
    freshness_s: dict[str, float] = field(
        default_factory=lambda: default_freshness(DEFAULT_SPAN_FLUSH_INTERVAL)
    )

    @property
    def settle_s(self) -> float:
        """How long a trace's span set must stay unchanged before it is judged."""
        return self.span_flush_interval + STORE_INGEST_S

    def service(self, role: str) -> ServiceSpec:
        return self.services[role]

    @property
    def starts_services(self) -> bool:
        """Whether the harness starts any of the services (through start commands)."""
        return any(spec.start is not None for spec in self.services.values())


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
    logs = r.string(caps.get("logs"), "capabilities.logs", choices=("file", "otlp")) or "file"
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
        or "parent"
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


def load_target(path: str | Path) -> Target:
    """Read and validate a target file."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as error:
        raise TargetError(f"{file}: cannot read target file: {error.strerror}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise TargetError(f"{file}: not valid YAML: {error}") from error
    return parse_target(data, str(file), file)
