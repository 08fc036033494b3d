"""A target as the suite uses it, once its file is read and checked (target_validate.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from obsconf.conformance.clients.registry import StoreSpec
from obsconf.conformance.contract import StartCommand
from obsconf.conformance.deviations import Deviation
from obsconf.conformance.target_defaults import (
    DEFAULT_LOGS,
    DEFAULT_SPAN_FLUSH_INTERVAL,
    STORE_INGEST_S,
    default_freshness,
)


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
    logs: str = DEFAULT_LOGS
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
