"""Target files: what implementation to grade and where its telemetry lands.

A target names the three services (started by us, or already running at URLs), the NATS
subjects, the metric and label names, capabilities (consumer spans linked instead of
parented, a hook that answers 5xx), the backends (the local stack, or URLs) and the deviations
it declares per guarantee (known bug, missing feature, not applicable). A malformed
file is rejected before anything starts, with the path to the field at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conformance.catalog import catalog
from conformance.deviations import Deviation, parse_deviations
from stack.binaries import versions

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
DEFAULT_SUBJECTS = {"user_created": "user.created", "order_created": "order.created"}


class TargetError(ValueError):
    """The target file is malformed; the message names the file and the field path."""


@dataclass(frozen=True)
class ServiceSpec:
    role: str
    name: str
    url: str | None  # None: started by the suite


@dataclass(frozen=True)
class Hook:
    method: str
    path: str


@dataclass(frozen=True)
class BackendsSpec:
    start: str | None  # "local", "containers", "auto", or None (use the URLs)
    prometheus: str | None = None
    logs: str | None = None
    traces: str | None = None
    nats: str | None = None
    grafana: str | None = None
    images: dict[str, str] = field(default_factory=dict)  # component -> image (containers)


@dataclass(frozen=True)
class Target:
    name: str
    path: Path | None
    start_services: str | None  # "reference" or None
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
    # Declared deviations by guarantee id (conformance/deviations.py).
    deviations: dict[str, Deviation] = field(default_factory=dict)

    @property
    def settle_s(self) -> float:
        """How long a trace's span set must stay unchanged before it is judged."""
        return self.span_flush_interval + STORE_INGEST_S

    def service(self, role: str) -> ServiceSpec:
        return self.services[role]


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

    services_raw = r.mapping(top.get("services"), "services", {"start", *ROLES})
    start_services = r.string(services_raw.get("start"), "services.start", choices=("reference",))
    services = {}
    for role in ROLES:
        spec = r.mapping(services_raw.get(role), f"services.{role}", {"name", "url"})
        url = r.url(spec.get("url"), f"services.{role}.url")
        if url is None and start_services is None:
            raise r.fail(f"services.{role}.url", "required unless services.start is 'reference'")
        services[role] = ServiceSpec(
            role, r.string(spec.get("name"), f"services.{role}.name") or DEFAULT_NAMES[role], url
        )

    def overrides(key: str, defaults: dict[str, str]) -> dict[str, str]:
        given = r.mapping(top.get(key), key, set(defaults))
        return {k: r.string(given.get(k), f"{key}.{k}") or v for k, v in defaults.items()}

    caps = r.mapping(
        top.get("capabilities"),
        "capabilities",
        {"consumer_relation", "error_hook", "span_flush_interval"},
    )
    flush = caps.get("span_flush_interval", DEFAULT_SPAN_FLUSH_INTERVAL)
    if isinstance(flush, bool) or not isinstance(flush, int | float) or not 0 <= flush <= 60:
        raise r.fail(
            "capabilities.span_flush_interval", f"must be seconds between 0 and 60, got {flush!r}"
        )
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
        logs=r.url(raw_backends.get("logs"), "backends.logs"),
        traces=r.url(raw_backends.get("traces"), "backends.traces"),
        nats=r.url(raw_backends.get("nats"), "backends.nats", ("nats",)),
        grafana=r.url(raw_backends.get("grafana"), "backends.grafana"),
        images=images,
    )
    if start_backends is None:
        for key in ("prometheus", "logs", "traces"):
            if getattr(backends, key) is None:
                raise r.fail(f"backends.{key}", "required unless backends.start names a stack")
    if start_services == "reference" and start_backends is None:
        raise r.fail(
            "services.start",
            "starting the reference services needs backends.start: local, containers or auto",
        )

    faults = top.get("faults") or []
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        raise r.fail("faults", "must be a list of fault names")

    return Target(
        name=name or "",
        path=path,
        start_services=start_services,
        services=services,
        subjects=overrides("subjects", DEFAULT_SUBJECTS),
        metrics=overrides("metrics", DEFAULT_METRICS),
        labels=overrides("labels", DEFAULT_LABELS),
        consumer_relation=relation,
        error_hook=hook,
        backends=backends,
        faults=tuple(faults),
        span_flush_interval=float(flush),
        deviations=parse_deviations(top.get("deviations"), catalog(), r.fail),
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
