"""The URLs of a running stack: all the suite and the services ever learn about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Endpoints:
    """Where each backend answers. Local, container and external stacks all produce this."""

    prometheus: str  # http base URL (PromQL API)
    logs: str  # http base URL of the log store (VictoriaLogs, LogsQL API)
    traces: str  # http base URL of the trace store query API (Jaeger)
    otlp: str  # OTLP/HTTP base URL services export traces to
    postgres: str  # SQLAlchemy URL
    mongodb: str  # mongodb:// URL (FerretDB locally)
    nats: str  # nats:// URL, JetStream enabled
    log_dir: str = ""  # services write <name>.log here; the log shipper tails it
    otlp_logs: str = ""  # full URL the log path takes OTLP/HTTP log records at ("" if none)
    scrape_dir: str = ""  # Prometheus file_sd directory: <job>.json registers a target
    kinds: dict[str, str] = field(default_factory=dict)  # backend kind per role
    # Services started on this host bind `service_host`; Prometheus scrapes them at
    # `scrape_host:<port>` (loopback locally; the host gateway from inside containers).
    service_host: str = "127.0.0.1"
    scrape_host: str = "127.0.0.1"
    # The stack's own directory on this host (log_dir and scrape_dir are in it); a run on the
    # stack locks `run.lock` there (stack/runlock.py). "" for a stack the harness did not start.
    run_dir: str = ""

    def as_dict(self) -> dict:
        return asdict(self)
